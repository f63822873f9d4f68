"""Background controllers that a real control plane runs and clients rely on:
  - the garbage collector: deletes dependents whose owners are all gone
    (background propagation), strips dangling owner references when other
    owners remain, finishes foreground deletion, orphans on request;
  - the namespace controller: empties a terminating namespace, then
    removes it.

It keeps an index owner-uid -> dependents, maintained by a store listener
(called under the store lock), and does its work on one daemon thread.
"""
import collections
import json
import threading
import time

from . import errors


class GarbageCollector:
    DANGLING_DELAY = 0.3   # seconds before a dependent with a missing owner is collected

    def __init__(self, api):
        self.api = api
        self.store = api.store
        self.dependents = collections.defaultdict(set)   # owner uid -> {(gr, ns, name)}
        self._owners_of = {}                               # (gr, ns, name) -> {owner uids}
        self._queue = collections.deque()                  # ("owner-gone", uid) | ("check", key, t)
        self._namespaces = set()
        self._foreground = set()                           # (gr, ns, name) awaiting dependents
        self._wake = threading.Event()
        self.store.listeners.append(self._on_change)
        self._thread = threading.Thread(target=self._run, name="garbage-collector", daemon=True)
        self._thread.start()

    # --- index (runs under the store lock) ------------------------------------------------
    def _on_change(self, gr, type_, entry, prev):
        md = entry.obj["metadata"]
        key = (gr, md.get("namespace", ""), md["name"])
        old_owners = self._owners_of.pop(key, set())
        for uid in old_owners:
            self.dependents[uid].discard(key)
            if not self.dependents[uid]:
                del self.dependents[uid]
        if type_ == "DELETED":
            self._queue.append(("owner-gone", md.get("uid")))
            self._wake.set()
            return
        owners = {r.get("uid") for r in md.get("ownerReferences") or [] if r.get("uid")}
        if owners:
            self._owners_of[key] = owners
            for uid in owners:
                self.dependents[uid].add(key)
            if any(uid not in self.store.by_uid for uid in owners):
                self._queue.append(("check", key, time.monotonic() + self.DANGLING_DELAY))
                self._wake.set()
        if md.get("deletionTimestamp") and "foregroundDeletion" in (md.get("finalizers") or []):
            self._foreground.add(key)
            self._wake.set()

    def has_dependents(self, uid):
        return bool(self.dependents.get(uid))

    def kick(self):
        self._wake.set()

    def terminate_namespace(self, name):
        with self.store.lock:
            self._namespaces.add(name)
        self._wake.set()

    def orphan_dependents(self, uid):
        """Orphan propagation: remove the owner reference from every dependent."""
        with self.store.lock:
            for key in list(self.dependents.get(uid, ())):
                self._strip_owner_refs(key, {uid})

    # --- the worker ---------------------------------------------------------------------------
    def _run(self):
        while True:
            self._wake.wait(0.2)
            self._wake.clear()
            try:
                self._process()
            except Exception as e:   # keep collecting whatever one object did wrong
                import sys
                print(f"garbage collector: {e!r}", file=sys.stderr)

    def _process(self):
        deferred = []
        while True:
            with self.store.lock:
                if not self._queue:
                    break
                item = self._queue.popleft()
            if item[0] == "owner-gone":
                with self.store.lock:
                    keys = list(self.dependents.get(item[1], ()))
                for key in keys:
                    self._check_dependent(key)
            elif item[0] == "check":
                if item[2] > time.monotonic():
                    deferred.append(item)
                else:
                    self._check_dependent(item[1])
        if deferred:
            with self.store.lock:
                self._queue.extend(deferred)
            self._wake.set()
            time.sleep(0.05)
        with self.store.lock:
            foreground, namespaces = list(self._foreground), list(self._namespaces)
        for key in foreground:
            self._finish_foreground(key)
        for ns in namespaces:
            self._clean_namespace(ns)

    def _check_dependent(self, key):
        with self.store.lock:
            gr, ns, name = key
            entry = self.store.get(gr, ns, name)
            if entry is None:
                return
            refs = entry.obj["metadata"].get("ownerReferences") or []
            missing = {r.get("uid") for r in refs if r.get("uid") not in self.store.by_uid
                       or self._owner_deleting_foreground(r.get("uid"))}
            if not missing:
                return
            if any(r.get("uid") not in missing for r in refs):
                # other owners are still solid: only drop the references to the gone ones
                self._strip_owner_refs(key, missing)
                return
            self._delete(gr, ns, name)

    def _owner_deleting_foreground(self, uid):
        loc = self.store.by_uid.get(uid)
        if loc is None:
            return False
        entry = self.store.get(*loc)
        md = entry.obj["metadata"] if entry else {}
        return bool(md.get("deletionTimestamp")) and \
            "foregroundDeletion" in (md.get("finalizers") or [])

    def _strip_owner_refs(self, key, uids):
        gr, ns, name = key
        entry = self.store.get(gr, ns, name)
        if entry is None:
            return
        obj = json.loads(entry.raw)
        obj["metadata"]["ownerReferences"] = [r for r in obj["metadata"].get("ownerReferences")
                                              or [] if r.get("uid") not in uids]
        if not obj["metadata"]["ownerReferences"]:
            del obj["metadata"]["ownerReferences"]
        self.store.put(gr, obj)

    def _rt_for(self, gr):
        for rt in self.api.registry.all():
            if rt.storage_gr == gr and rt.gr == gr:
                return rt
        return None

    def _delete(self, gr, ns, name):
        from .api import SYSTEM
        rt = self._rt_for(gr)
        if rt is None:
            return
        try:
            self.api.delete(rt, ns, name, SYSTEM, propagation="Background")
        except errors.StatusError:
            pass

    def _finish_foreground(self, key):
        with self.store.lock:
            gr, ns, name = key
            entry = self.store.get(gr, ns, name)
            if entry is None or "foregroundDeletion" not in \
                    (entry.obj["metadata"].get("finalizers") or []):
                self._foreground.discard(key)
                return
            uid = entry.obj["metadata"].get("uid")
            deps = list(self.dependents.get(uid, ()))
        if deps:
            for dep in deps:
                self._check_dependent(dep)
            self._wake.set()
            return
        with self.store.lock:
            entry = self.store.get(gr, ns, name)
            if entry is None:
                return
            obj = json.loads(entry.raw)
            obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"]
                                             if f != "foregroundDeletion"]
            self._foreground.discard(key)
            rt = self._rt_for(gr)
            from .api import SYSTEM
            self.api._update(rt, entry, obj, SYSTEM, "", managed=True)

    def _clean_namespace(self, ns):
        from .api import SYSTEM
        remaining = 0
        with self.store.lock:
            grs = [gr for gr in self.store.resource_types()]
        for gr in grs:
            rt = self._rt_for(gr)
            if rt is None or not rt.namespaced:
                continue
            with self.store.lock:
                entries = self.store.entries(gr, ns)
            for e in entries:
                remaining += 1
                if e.obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    self.api.delete(rt, ns, e.obj["metadata"]["name"], SYSTEM,
                                    propagation="Background")
                except errors.StatusError:
                    pass
        if remaining == 0:
            with self.store.lock:
                self._namespaces.discard(ns)
                entry = self.store.get(("", "namespaces"), "", ns)
                if entry is not None:
                    obj = json.loads(entry.raw)
                    obj.setdefault("spec", {})["finalizers"] = []
                    self.store.put(("", "namespaces"), obj)
            self.api.finalize_namespace(ns)
        else:
            self._wake.set()
            time.sleep(0.02)
