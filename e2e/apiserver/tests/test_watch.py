"""Watch: history replay, 410 Expired, selector-driven DELETED, bookmarks,
timeouts, restart, sendInitialEvents."""
import time
import unittest

from e2e.apiserver import selection
from e2e.apiserver.store import Store

from .helpers import ServerTestCase, pod


class StoreHistoryTest(unittest.TestCase):
    def _put(self, store, name, labels=None):
        return store.put(("", "configmaps"), {"metadata": {"name": name, "namespace": "ns",
                                                           "labels": labels or {}}})

    def test_replay_after_rv(self):
        store = Store(history_size=10)
        first = self._put(store, "a")
        self._put(store, "b")
        self._put(store, "c")
        w = store.watch(("", "configmaps"), None, None, None,
                        int(first.obj["metadata"]["resourceVersion"]))
        events, _ = store.next_events(w, 0.01)
        self.assertEqual([(t, o["metadata"]["name"]) for t, o, _ in events],
                         [("ADDED", "b"), ("ADDED", "c")])

    def test_too_old_resource_version_is_410(self):
        store = Store(history_size=3)
        first = self._put(store, "x0")
        for i in range(1, 6):
            self._put(store, f"x{i}")
        with self.assertRaises(Exception) as cm:
            store.watch(("", "configmaps"), None, None, None,
                        int(first.obj["metadata"]["resourceVersion"]))
        self.assertEqual(cm.exception.code, 410)
        self.assertEqual(cm.exception.reason, "Expired")
        self.assertRegex(cm.exception.message, r"^too old resource version: \d+ \(\d+\)$")

    def test_clear_history_expires_all_older_versions(self):
        store = Store()
        e = self._put(store, "a")
        self._put(store, "b")
        store.clear_history()
        with self.assertRaises(Exception) as cm:
            store.watch(("", "configmaps"), None, None, None,
                        int(e.obj["metadata"]["resourceVersion"]))
        self.assertEqual(cm.exception.code, 410)
        store.watch(("", "configmaps"), None, None, None, store.rv)   # current RV is fine

    def test_object_that_stops_matching_is_deleted(self):
        store = Store()
        sel = selection.parse_label_selector("app=web")
        w = store.watch(("", "configmaps"), None, sel, None, store.rv)
        self._put(store, "a", {"app": "web"})
        moved = self._put(store, "a", {"app": "db"})
        self._put(store, "a", {"app": "web"})
        events, _ = store.next_events(w, 0.01)
        self.assertEqual([t for t, _, _ in events], ["ADDED", "DELETED", "ADDED"])
        # the DELETED event carries the old content at the new resourceVersion
        deleted = events[1][1]
        self.assertEqual(deleted["metadata"]["labels"], {"app": "web"})
        self.assertEqual(deleted["metadata"]["resourceVersion"],
                         moved.obj["metadata"]["resourceVersion"])


class HTTPWatchTest(ServerTestCase):
    history = 5
    bookmark_interval = 0.3

    def setUp(self):
        self.create_ns("w")

    def test_watch_from_rv_sees_changes_in_order(self):
        c = self.client
        _, lst, _ = c.get("/api/v1/namespaces/w/pods")
        rv = lst["metadata"]["resourceVersion"]
        w = c.watch(f"/api/v1/namespaces/w/pods?watch=true&resourceVersion={rv}")
        c.post("/api/v1/namespaces/w/pods", pod("p1", {"app": "x"}))
        c.patch("/api/v1/namespaces/w/pods/p1", {"metadata": {"labels": {"v": "2"}}})
        c.delete("/api/v1/namespaces/w/pods/p1")
        got = [w.next() for _ in range(3)]
        w.close()
        self.assertEqual([e["type"] for e in got], ["ADDED", "MODIFIED", "DELETED"])
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
        self.assertEqual(rvs, sorted(rvs))
        self.assertGreater(rvs[0], int(rv))

    def test_watch_without_rv_sends_initial_state(self):
        c = self.client
        self.create_ns("w-init")
        c.post("/api/v1/namespaces/w-init/configmaps", {"metadata": {"name": "init"}})
        w = c.watch("/api/v1/namespaces/w-init/configmaps?watch=1")
        ev = w.next()
        w.close()
        self.assertEqual(ev["type"], "ADDED")
        self.assertEqual(ev["object"]["metadata"]["name"], "init")

    def test_expired_rv_gets_error_event_410(self):
        c = self.client
        _, lst, _ = c.get("/api/v1/namespaces/w/secrets")
        old = lst["metadata"]["resourceVersion"]
        for i in range(8):
            c.post("/api/v1/namespaces/w/secrets", {"metadata": {"name": f"s{i}"}})
        w = c.watch(f"/api/v1/namespaces/w/secrets?watch=true&resourceVersion={old}")
        ev = w.next()
        end = w.next()
        w.close()
        self.assertEqual(w.status, 200)
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual(ev["object"]["code"], 410)
        self.assertEqual(ev["object"]["reason"], "Expired")
        self.assertIn("too old resource version", ev["object"]["message"])
        self.assertIsNone(end)

    def test_bookmarks_and_timeout(self):
        c = self.client
        _, lst, _ = c.get("/api/v1/namespaces/w/serviceaccounts")
        w = c.watch(f"/api/v1/namespaces/w/serviceaccounts?watch=true&allowWatchBookmarks=true"
                    f"&timeoutSeconds=1&resourceVersion={lst['metadata']['resourceVersion']}")
        events = []
        start = time.monotonic()
        while True:
            ev = w.next()
            if ev is None:
                break
            events.append(ev)
        w.close()
        self.assertLess(time.monotonic() - start, 3)
        bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
        self.assertTrue(bookmarks)
        self.assertEqual(bookmarks[0]["object"]["kind"], "ServiceAccount")
        self.assertTrue(bookmarks[0]["object"]["metadata"]["resourceVersion"].isdigit())

    def test_send_initial_events_ends_with_bookmark(self):
        c = self.client
        c.post("/api/v1/namespaces/w/configmaps", {"metadata": {"name": "ie"}})
        w = c.watch("/api/v1/namespaces/w/configmaps?watch=true&sendInitialEvents=true"
                    "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
        events = []
        while True:
            ev = w.next()
            events.append(ev)
            if ev["type"] == "BOOKMARK":
                break
        w.close()
        self.assertIn("ie", [e["object"]["metadata"].get("name") for e in events[:-1]])
        self.assertEqual(events[-1]["object"]["metadata"]["annotations"],
                         {"k8s.io/initial-events-end": "true"})

    def test_label_selector_watch_and_restart(self):
        c = self.client
        _, lst, _ = c.get("/api/v1/namespaces/w/pods")
        rv = lst["metadata"]["resourceVersion"]
        w = c.watch(f"/api/v1/namespaces/w/pods?watch=true&labelSelector=team%3Da"
                    f"&resourceVersion={rv}")
        c.post("/api/v1/namespaces/w/pods", pod("other", {"team": "b"}))
        c.post("/api/v1/namespaces/w/pods", pod("mine", {"team": "a"}))
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "mine"))
        # a restart drops the stream and the history: re-watching from rv is now 410
        status, body, _ = c.post("/debug/restart", {})
        self.assertEqual(status, 200, body)
        self.assertIsNone(w.next())
        w.close()
        w2 = c.watch(f"/api/v1/namespaces/w/pods?watch=true&resourceVersion={rv}")
        ev = w2.next()
        w2.close()
        self.assertEqual((ev["type"], ev["object"]["code"]), ("ERROR", 410))
        c.delete("/api/v1/namespaces/w/pods/other")
        c.delete("/api/v1/namespaces/w/pods/mine")


if __name__ == "__main__":
    unittest.main()
