"""A tiny runner for scripted checks: register with @check, fail with need(), skip with Skip.

The config, Helm and GitOps tests are long lists of independent checks whose messages matter
more than unittest's structure; they share this runner. The last line is the plain
"N passed, N failed, N skipped" that CI reads.
"""
import time
import traceback


class Skip(Exception):
    """A check that cannot run here; the message says why."""


class CheckFailed(AssertionError):
    """A check whose condition did not hold; the message says what was wrong."""


def need(cond, msg):
    if not cond:
        raise CheckFailed(msg)


class Checks:
    def __init__(self):
        self.fns = []

    def __call__(self, fn):
        self.fns.append(fn)
        return fn

    def run(self, title):
        """Runs every check, prints one line each and the totals; returns the exit code."""
        passed = failed = skipped = 0
        start = time.monotonic()
        for fn in self.fns:
            name = fn.__name__
            t0 = time.monotonic()
            try:
                fn()
            except Skip as e:
                skipped += 1
                print(f"SKIP {name}: {e}")
                continue
            except CheckFailed as e:
                failed += 1
                print(f"FAIL {name}:\n  " + str(e).replace("\n", "\n  "))
                continue
            except Exception:  # a crash in a check is a failure, with its traceback
                failed += 1
                print(f"FAIL {name}: crashed\n" + traceback.format_exc())
                continue
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.1f}s)")
        print(f"{title} took {time.monotonic() - start:.1f}s")
        print(f"{passed} passed, {failed} failed, {skipped} skipped")
        return 1 if failed else 0
