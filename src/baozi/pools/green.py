"""Greenlets: thousands of plain, blocking-style functions waiting on I/O in one OS thread.

The standard library must be monkey-patched before anything imports it, so that sockets, locks
and sleeps yield to other greenlets: ``baozi worker -P gevent`` does that at start (it sets
``BAOZI_GEVENT=1``, which makes ``import baozi`` patch first thing, and its worker processes
inherit it). A call past its timeout, or cancelled, has its greenlet killed; so does
:meth:`GeventPool.terminate`.
"""

from __future__ import annotations

import sys
from concurrent.futures import Future
from typing import Any, ClassVar

from ..errors import Cancelled
from .base import Call, Pool, set_exception_once, set_result_once
from .context import run_with_job

__all__ = ["GeventPool", "gevent_patched"]


def _gevent() -> Any:
    try:
        import gevent
        import gevent.pool
    except ImportError as exc:
        raise ImportError("the gevent pool needs gevent: pip install 'baozi[gevent]'") from exc
    return gevent


def gevent_patched() -> bool:
    """Whether the standard library is monkey-patched by gevent in this process."""
    if (
        "gevent.monkey" not in sys.modules
    ):  # nothing patched, and no need to import gevent to say so
        return False
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("socket") and monkey.is_module_patched("threading"))


class GeventPool(Pool):
    kind: ClassVar[str] = "gevent"
    default_concurrency: ClassVar[int] = 1000

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        gevent = _gevent()
        if not gevent_patched():
            raise RuntimeError(
                "the gevent pool needs the standard library patched before anything imports it: "
                "start the worker with `baozi worker -P gevent` (it patches at start), or call "
                "gevent.monkey.patch_all() first thing in your program"
            )
        self._gevent = gevent
        self._group = gevent.pool.Group()
        self._greenlets: dict[Future[Any], Any] = {}

    def submit(self, call: Call) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        self._greenlets[future] = self._group.spawn(self._run, call, future)
        return future

    def cancel(self, future: Future[Any]) -> bool:
        """Fail the call now, and kill its greenlet with ``Cancelled``."""
        greenlet = self._greenlets.pop(future, None)
        if greenlet is None or future.done():
            return False
        set_exception_once(future, Cancelled("the job was cancelled"))
        greenlet.kill(Cancelled, block=False)
        return True

    def _run(self, call: Call, future: Future[Any]) -> None:
        gevent = self._gevent
        try:
            if call.timeout is None:
                value = run_with_job(call)
            else:
                error = TimeoutError(f"the job ran past its {call.timeout} s timeout")
                with gevent.Timeout(call.timeout, error):
                    value = run_with_job(call)
        except gevent.GreenletExit:
            return  # killed by terminate(): the future stays pending, the job goes back
        except BaseException as exc:  # noqa: BLE001 -- the call's outcome, whatever it is
            set_exception_once(future, exc)
        else:
            set_result_once(future, value)
        finally:
            self._greenlets.pop(future, None)

    def close(self) -> None:
        """Wait for every call in flight."""
        self._group.join()

    def terminate(self) -> None:
        """Kill every greenlet now; their futures stay pending."""
        self._group.kill(block=False)
