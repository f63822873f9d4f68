"""The request log tests read back: one record per API request with the
user, verb, resource coordinates, response code and user agent.  Kept in a
bounded in-memory ring (GET /debug/requests) and optionally appended as
JSON lines to a file (--request-log PATH).
"""
import collections
import json
import threading
import time


class RequestLog:
    def __init__(self, path=None, capacity=200000):
        self._lock = threading.Lock()
        self._records = collections.deque(maxlen=capacity)
        self._path = path
        self._file = open(path, "a", buffering=1) if path else None

    def add(self, **record):
        record.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) +
                          f".{int(time.time() * 1000) % 1000:03d}Z")
        with self._lock:
            self._records.append(record)
            if self._file:
                self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def records(self):
        with self._lock:
            return list(self._records)

    def reset(self):
        with self._lock:
            self._records.clear()

    def close(self):
        if self._file:
            self._file.close()
