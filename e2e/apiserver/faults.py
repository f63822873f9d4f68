"""Fault injection: periodic watch closes, random error answers (429 with
Retry-After, 500, 503), added latency, and a tiny watch history.  Configured
by `--faults SPEC` and by the admin-only `POST /debug/faults` endpoint.

SPEC is comma-separated key=value pairs (JSON bodies use the same keys):
  close-watch=SECONDS        close every watch stream after this long
  error-rate=FRACTION        answer this fraction of requests with an error
  error-codes=429:500:503    codes to pick from (colon separated)
  error-scope=all|nonwatch|reads|writes   which requests may fail (default all)
  latency-ms=N               sleep N ms before answering each request
  watch-history=N            shrink the watch event history to N events
Discovery, OpenAPI, health and /debug requests are never failed or delayed.
"""
import random
import threading

_KEYS = {"close-watch", "error-rate", "error-codes", "error-scope", "latency-ms", "watch-history"}


def parse_spec(spec):
    out = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().replace("_", "-")
        if not sep or key not in _KEYS:
            raise ValueError(f"bad fault setting {part!r}; known keys: {', '.join(sorted(_KEYS))}")
        out[key] = value.strip()
    return normalize(out)


def normalize(raw):
    """Validate and convert a dict of settings (from a SPEC or a JSON body)."""
    out = {}
    for key, value in raw.items():
        key = key.replace("_", "-")
        if key not in _KEYS:
            raise ValueError(f"unknown fault setting {key!r}")
        if key in ("close-watch", "error-rate"):
            out[key] = float(value)
        elif key in ("latency-ms", "watch-history"):
            out[key] = int(value)
        elif key == "error-codes":
            codes = value if isinstance(value, list) else str(value).split(":")
            out[key] = [int(c) for c in codes if str(c).strip()]
            for c in out[key]:
                if c not in (429, 500, 503, 504):
                    raise ValueError(f"unsupported error code {c}")
        elif key == "error-scope":
            if value not in ("all", "nonwatch", "reads", "writes"):
                raise ValueError(f"bad error-scope {value!r}")
            out[key] = value
    if "error-rate" in out and not 0 <= out["error-rate"] <= 1:
        raise ValueError("error-rate must be within [0, 1]")
    return out


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self.settings = {}
        self._rng = random.Random()

    def update(self, settings, replace=False):
        with self._lock:
            self.settings = dict(settings) if replace else {**self.settings, **settings}
            return dict(self.settings)

    def get(self, key, default=None):
        return self.settings.get(key, default)

    def latency(self):
        return self.settings.get("latency-ms", 0) / 1000.0

    def close_watch_after(self):
        return self.settings.get("close-watch") or None

    def pick_error(self, verb):
        """An error code to answer with, or None."""
        rate = self.settings.get("error-rate", 0)
        if not rate:
            return None
        scope = self.settings.get("error-scope", "all")
        if scope == "nonwatch" and verb == "watch":
            return None
        if scope == "reads" and verb not in ("get", "list", "watch"):
            return None
        if scope == "writes" and verb in ("get", "list", "watch"):
            return None
        with self._lock:
            if self._rng.random() >= rate:
                return None
            return self._rng.choice(self.settings.get("error-codes") or [500])
