"""Object storage with etcd-like semantics.

Owns: the global resourceVersion counter, the objects of every resource
(each kept with its serialized JSON so lists and watch events reuse the
bytes), the bounded per-resource watch event history, live watchers, and the
list snapshots behind continue tokens.

Stored dicts are never mutated after being stored: writers build a new dict
and call put().  Everything here runs under one re-entrant lock; watchers
wait on a Condition of that lock but never hold it while writing to a socket.
"""
import base64
import bisect
import collections
import itertools
import json
import threading
import time

from . import errors


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Entry:
    __slots__ = ("obj", "raw")

    def __init__(self, obj, raw):
        self.obj = obj
        self.raw = raw

    @property
    def key(self):
        md = self.obj["metadata"]
        return (md.get("namespace", ""), md["name"])

    def copy(self):
        """A private, mutable deep copy (json round-trip is faster than deepcopy)."""
        return json.loads(self.raw)


class Event:
    __slots__ = ("rv", "type", "entry", "prev")

    def __init__(self, rv, type_, entry, prev):
        self.rv, self.type, self.entry, self.prev = rv, type_, entry, prev


class Watcher:
    """One watch stream's filter and pending-event queue (filled under the store lock)."""

    MAX_PENDING = 500000

    def __init__(self, store, gr, namespace, label_sel, field_sel):
        self.store = store
        self.gr = gr
        self.namespace = namespace
        self.label_sel = label_sel
        self.field_sel = field_sel
        self.pending = collections.deque()   # (type, obj dict, raw bytes)
        self.closed = False                   # set by server (restart, overflow)
        self.close_reason = None

    def _match(self, obj):
        md = obj["metadata"]
        if self.namespace and md.get("namespace") != self.namespace:
            return False
        if self.label_sel and not self.label_sel.matches(md.get("labels")):
            return False
        if self.field_sel and not self.field_sel.matches(obj):
            return False
        return True

    def offer(self, ev):
        new = ev.entry
        if ev.type == "DELETED":
            if self._match(new.obj):
                self._push("DELETED", new.obj, new.raw)
            return
        new_ok = self._match(new.obj)
        old_ok = ev.prev is not None and self._match(ev.prev.obj)
        if ev.type == "ADDED" or (new_ok and not old_ok):
            if new_ok:
                self._push("ADDED", new.obj, new.raw)
        elif new_ok:
            self._push("MODIFIED", new.obj, new.raw)
        elif old_ok:
            # stopped matching: DELETED with the old content at the new version,
            # exactly like the real watch cache
            old = json.loads(ev.prev.raw)
            old["metadata"]["resourceVersion"] = str(ev.rv)
            self._push("DELETED", old, dumps(old))

    def _push(self, type_, obj, raw):
        if len(self.pending) >= self.MAX_PENDING:
            self.closed, self.close_reason = True, "overflow"
            return
        self.pending.append((type_, obj, raw))


class Store:
    SNAPSHOT_LIMIT = 64

    def __init__(self, history_size=1000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 1
        self.history_size = history_size
        self._data = collections.defaultdict(dict)      # gr -> {(ns, name): Entry}
        self._sorted = {}                                # gr -> sorted keys (cache)
        self._history = {}                               # gr -> deque[Event]
        self._compacted = collections.defaultdict(int)   # gr -> newest RV dropped
        self._watchers = collections.defaultdict(set)    # gr -> {Watcher}
        self._snapshots = collections.OrderedDict()      # id -> (rv, [Entry])
        self._snap_ids = itertools.count(1)
        self.by_uid = {}                                 # uid -> (gr, ns, name)
        self.listeners = []                              # f(gr, type, entry, prev) under lock

    # --- reads ------------------------------------------------------------------
    def get(self, gr, ns, name):
        return self._data[gr].get((ns or "", name))

    def count(self, gr):
        return len(self._data[gr])

    def keys(self, gr, namespace=None):
        """Sorted (ns, name) keys, restricted to one namespace if given."""
        keys = self._sorted.get(gr)
        if keys is None:
            keys = self._sorted[gr] = sorted(self._data[gr])
        if namespace is None:
            return keys
        lo = bisect.bisect_left(keys, (namespace, ""))
        hi = bisect.bisect_left(keys, (namespace + "\x00", ""))
        return keys[lo:hi]

    def entries(self, gr, namespace=None):
        data = self._data[gr]
        return [data[k] for k in self.keys(gr, namespace)]

    def resource_types(self):
        return [gr for gr, d in self._data.items() if d]

    # --- writes -----------------------------------------------------------------
    def put(self, gr, obj):
        """Store obj as the new state (ADDED or MODIFIED); assigns the next RV."""
        with self.lock:
            md = obj["metadata"]
            key = (md.get("namespace", ""), md["name"])
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            entry = Entry(obj, dumps(obj))
            data = self._data[gr]
            prev = data.get(key)
            data[key] = entry
            if prev is None:
                self._sorted.pop(gr, None)
            uid = md.get("uid")
            if uid:
                self.by_uid[uid] = (gr, key[0], key[1])
            self._record(gr, "ADDED" if prev is None else "MODIFIED", entry, prev)
            return entry

    def remove(self, gr, ns, name):
        """Delete the object; the DELETED event carries a fresh RV."""
        with self.lock:
            key = (ns or "", name)
            prev = self._data[gr].pop(key, None)
            if prev is None:
                return None
            self._sorted.pop(gr, None)
            self.rv += 1
            obj = json.loads(prev.raw)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            entry = Entry(obj, dumps(obj))
            self.by_uid.pop(obj["metadata"].get("uid"), None)
            self._record(gr, "DELETED", entry, prev)
            return entry

    def _record(self, gr, type_, entry, prev):
        ev = Event(self.rv, type_, entry, prev)
        hist = self._history.get(gr)
        if hist is None:
            hist = self._history[gr] = collections.deque()
        hist.append(ev)
        while len(hist) > self.history_size:
            self._compacted[gr] = hist.popleft().rv
        for w in self._watchers.get(gr, ()):
            w.offer(ev)
        for listener in self.listeners:
            listener(gr, type_, entry, prev)
        self.cond.notify_all()

    # --- watch ------------------------------------------------------------------
    def set_history_size(self, n):
        with self.lock:
            self.history_size = max(1, int(n))
            for gr, hist in self._history.items():
                while len(hist) > self.history_size:
                    self._compacted[gr] = hist.popleft().rv

    def watch(self, gr, namespace, label_sel, field_sel, rv, initial_events=False):
        """Register a watcher; replays history after rv, or current state when
        rv is None (or initial_events).  Raises 410 Expired if rv is compacted."""
        with self.lock:
            w = Watcher(self, gr, namespace, label_sel, field_sel)
            if rv is None or initial_events:
                # the current state stands for everything up to now
                for entry in self.entries(gr, namespace):
                    if w._match(entry.obj):
                        w._push("ADDED", entry.obj, entry.raw)
            else:
                compacted = self._compacted[gr]
                if rv < compacted:
                    raise errors.expired(f"too old resource version: {rv} ({compacted + 1})")
                hist = self._history.get(gr, ())
                for ev in hist:
                    if ev.rv > rv:
                        w.offer(ev)
            self._watchers[gr].add(w)
            return w

    def unwatch(self, w):
        with self.lock:
            self._watchers[w.gr].discard(w)

    def next_events(self, w, timeout):
        """Wait up to timeout for events; returns (events, current_rv)."""
        with self.cond:
            if not w.pending and not w.closed:
                self.cond.wait(timeout)
            events = list(w.pending)
            w.pending.clear()
            return events, self.rv

    def drop_watchers(self, reason="restart"):
        with self.lock:
            for ws in self._watchers.values():
                for w in ws:
                    w.closed, w.close_reason = True, reason
            self._watchers.clear()
            self.cond.notify_all()

    def clear_history(self):
        """Forget all events: every watch from an older RV now gets 410."""
        with self.lock:
            for gr in set(self._history) | set(self._data):
                self._compacted[gr] = self.rv
            self._history.clear()

    def watcher_count(self):
        with self.lock:
            return sum(len(ws) for ws in self._watchers.values())

    # --- list snapshots (continue tokens) -------------------------------------
    def snapshot(self, gr, namespace):
        """Freeze the current entry list; returns (id, rv, entries)."""
        with self.lock:
            entries = self.entries(gr, namespace)
            sid = next(self._snap_ids)
            self._snapshots[sid] = (self.rv, entries, time.monotonic())
            while len(self._snapshots) > self.SNAPSHOT_LIMIT:
                self._snapshots.popitem(last=False)
            return sid, self.rv, entries

    def resume_snapshot(self, sid):
        with self.lock:
            snap = self._snapshots.get(sid)
            if snap is None:
                return None
            self._snapshots.move_to_end(sid)
            return snap[0], snap[1]


def encode_continue(rv, start_key, sid):
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": "/".join(start_key) + "\u0000",
             "snap": sid}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def decode_continue(token):
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        start = data["start"].rstrip("\u0000")
        ns, _, name = start.rpartition("/")
        return int(data["rv"]), (ns, name), int(data["snap"])
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start "
                                 "resourceVersion (version meta.k8s.io/v1)")
