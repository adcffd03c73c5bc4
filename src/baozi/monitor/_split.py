"""Processes x coroutines: the URL list split over N processes, each with its own event loop.

Each child checks its share (every Nth URL) with :func:`check_local` (greenlets on
geventhttpclient, or coroutines on aiohttp) and sends its results back in batches over
a pipe; the parent merges them into one list in input order, calling ``on_done`` for each, so the
caller draws one progress bar, one table and one JSON document whatever N is.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from ._check import Check
from ._local import Client, check_local, preload

__all__ = ["Split", "check_split", "shares"]

FLUSH = 0.05
"""Seconds a child holds results before sending them: a smooth bar at little cost per check."""

_Row = tuple[int, bool, int | None, float, str]  # index, ok, status, seconds, reason


def shares(total: int, parts: int) -> list[range]:
    """``range(total)`` dealt into at most ``parts`` shares, as even as can be, none empty. Dealt
    in turn (0, N, 2N... to the first), so slow hosts grouped in a file spread over them all."""
    parts = max(1, min(parts, total))
    return [range(i, total, parts) for i in range(parts)]


class Split:
    """``urls`` being checked by ``processes`` children, ``concurrency`` in flight in all; the
    children start at once (before the caller starts threads of its own, such as a progress bar's,
    since they are forked where the platform can). Each checks on ``client``."""

    def __init__(
        self,
        urls: list[str],
        expect: int,
        timeout: float,
        concurrency: int,
        processes: int,
        client: Client = "aiohttp",
    ) -> None:
        self.urls = urls
        self.parts = parts = shares(len(urls), processes)
        slots = shares(max(concurrency, len(parts)), len(parts))  # each child's share of -c
        # fork where there is one: a child starts in milliseconds with everything imported,
        # its client too (imported here once, not by each child; gevent's hub is made later,
        # in each child, on first use).
        methods = multiprocessing.get_all_start_methods()
        if "fork" in methods:
            preload(client)
        context: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.children: list[Any] = []
        self.pipes: list[Connection] = []
        try:
            for part, slot in zip(parts, slots, strict=True):
                receive, send = context.Pipe(duplex=False)
                share = [urls[i] for i in part]
                child = context.Process(
                    target=_child,
                    args=(share, part, expect, timeout, len(slot), send, client),
                    name="baozi-monitor",
                    daemon=True,
                )
                child.start()
                send.close()  # the child's end: EOF on ours once the child has finished
                self.children.append(child)
                self.pipes.append(receive)
        except BaseException:
            self._stop()
            raise

    def results(self, on_done: Callable[[Check], object] | None = None) -> list[Check]:
        """Wait for every child; all the checks in input order, ``on_done`` called for each as
        it arrives. A child that dies leaves its unchecked URLs failed, with the reason."""
        results: list[Check | None] = [None] * len(self.urls)
        try:
            _gather(self.urls, self.pipes, results, on_done)
            for child in self.children:
                child.join()
        finally:
            self._stop()
        for part, child in zip(self.parts, self.children, strict=True):
            for i in part:
                if results[i] is None:
                    reason = f"its checking process died (exit code {child.exitcode})"
                    check = results[i] = Check(self.urls[i], False, None, 0.0, reason)
                    if on_done is not None:
                        on_done(check)
        return [check for check in results if check is not None]  # every one by now

    def _stop(self) -> None:
        for child in self.children:
            if child.is_alive():
                child.terminate()
                child.join()
        for pipe in self.pipes:
            pipe.close()


def check_split(
    urls: list[str],
    expect: int,
    timeout: float,
    concurrency: int,
    processes: int,
    on_done: Callable[[Check], object] | None = None,
    client: Client = "aiohttp",
) -> list[Check]:
    """Check every URL from ``processes`` processes, ``concurrency`` in flight in all; results in
    input order (see :class:`Split`)."""
    return Split(urls, expect, timeout, concurrency, processes, client).results(on_done)


def _gather(
    urls: list[str],
    pipes: list[Connection],
    results: list[Check | None],
    on_done: Callable[[Check], object] | None,
) -> None:
    open_pipes = list(pipes)
    while open_pipes:
        for pipe in wait(open_pipes):
            assert isinstance(pipe, Connection)
            try:
                rows: list[_Row] = pipe.recv()
            except EOFError:  # the child is done (or dead): nothing more comes
                open_pipes.remove(pipe)
                continue
            for i, ok, status, seconds, reason in rows:
                check = results[i] = Check(urls[i], ok, status, seconds, reason)
                if on_done is not None:
                    on_done(check)


def _child(
    urls: list[str],
    where: range,
    expect: int,
    timeout: float,
    concurrency: int,
    pipe: Connection,
    client: Client,
) -> None:
    from .._gc import tune

    tune()  # inherited when forked; a spawned child sets its own
    batch: list[_Row] = []
    sent = time.monotonic()

    def done(i: int, check: Check) -> None:
        nonlocal sent
        batch.append((where[i], check.ok, check.status, check.seconds, check.reason))
        now = time.monotonic()
        if now - sent >= FLUSH:
            pipe.send(batch[:])
            batch.clear()
            sent = now

    try:
        check_local(urls, expect, timeout, concurrency, done, client)
        if batch:
            pipe.send(batch)
    finally:
        pipe.close()
