"""Job pushes: one script run each, or many written behind one another in a batch block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import redis

from ...errors import EnqueueFailed, StoreError, StoreUnavailable
from ._junk import unwrap
from ._layout import opened
from ._link import FAILURES, Link, disconnect, pack


class Pushes(Link):
    """What a server link adds for job pushes: :meth:`push` and the :meth:`batch` block."""

    def push(self, entry: tuple[Any, ...]) -> None:
        """File one job: one script run appends it to the inbox and hands what is ready to a
        worker waiting idle on ``queue`` (or announces it). Returns once the server has run it.

        Inside this thread's :meth:`batch` block the push is written and its reply read later.
        """
        batch = self._local.batch
        if batch is not None:
            batch.send(entry)
            return
        if self._policy_checked and self._idle:
            # The common case, in short: a warm connection, the script loaded, no failure.
            conn = self._idle.pop()
            try:
                conn.send_packed_command(
                    [pack(("EVALSHA", self.shas["push"], 0, self.prefix, *entry, "0"))]
                )
                reply = conn.read_response()
            except redis.ResponseError as exc:
                self._give_back(conn)  # the reply was read whole: the connection is fine
                # Not run (a new or restarted server, which has to load the script), or refused
                # partway: sent again below, marked unless it never ran.
                retry = "0" if isinstance(exc, redis.exceptions.NoScriptError) else "1"
            except BaseException as exc:
                conn.disconnect()
                if not isinstance(exc, Exception):
                    raise
                retry = "1"  # lost, with or without its reply: the server files it once
            else:
                self._give_back(conn)
                if reply != 0:
                    unwrap(reply, self.where)
                return
            self.call(
                "add", lambda retried: self.script("push", (*entry, "1" if retried else retry))
            )
            return
        # Sent again after a lost reply, it is marked, and the server files the job once.
        self.call("add", lambda retried: self.script("push", (*entry, "1" if retried else "0")))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """A block in which this thread's job pushes are not waited for one by one: their
        replies are read as they pile up and when the block ends, which raises EnqueueFailed
        naming any job the server refused. A nested block joins the outer one."""
        if self._local.batch is not None:
            yield
            return
        batch = self._local.batch = _Batch(self)
        try:
            yield
        finally:
            self._local.batch = None
            batch.finish()


class _Batch:
    """The job pushes of one thread's batch block: written to one connection without waiting,
    their replies read once :data:`WINDOW` are pending, when the thread calls the store for
    anything else, and when the block ends."""

    WINDOW = 512
    SEND_EVERY = 64

    def __init__(self, server: Link) -> None:
        self.server = server
        self.conn: Any = None
        self.pending: list[tuple[Any, ...]] = []  # made, reply not read yet
        self.unsent: list[bytes] = []  # the last of them, packed, not written yet
        self.refused: list[tuple[str, str]] = []  # job id, the server's reason
        self.busy = False  # reading or sending again: the store calls that makes skip read()

    def send(self, entry: tuple[Any, ...]) -> None:
        if len(self.pending) >= self.WINDOW:
            self.read()
        server = self.server
        self.pending.append(entry)
        self.unsent.append(pack(("EVALSHA", server.shas["push"], 0, server.prefix, *entry, "0")))
        if len(self.unsent) >= self.SEND_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the pushes not written yet (a few at a time, so as not to pay a write each)."""
        if not self.unsent:
            return
        data = b"".join(self.unsent)
        self.unsent.clear()
        try:
            if self.conn is None:
                self.conn = opened(self.server, self.server._connect())
            self.conn.send_packed_command([data], check_health=False)
        except FAILURES:
            self._resend()

    def read(self) -> None:
        """Read every pending reply; what a lost connection leaves unread is sent again."""
        self.busy = True
        try:
            self._read()
        finally:
            self.busy = False

    def _read(self) -> None:
        self.flush()
        again: list[tuple[Any, ...]] = []
        try:
            while self.pending:
                entry = self.pending[0]
                if self.conn is None:
                    raise redis.ConnectionError("the connection was closed")
                try:
                    unwrap(self.conn.read_response(), self.server.where)
                except redis.exceptions.NoScriptError:
                    again.append(entry)  # a new or restarted server: sent again below
                except redis.ResponseError as exc:
                    self.refused.append((str(entry[1]), str(exc)))
                del self.pending[0]
        except FAILURES:
            self._resend()
        for entry in again:  # by name this time, which loads the script
            self._confirm(entry)

    def _resend(self) -> None:
        """Send every pending push again on a new connection, marked, and read the replies,
        retrying for the store's retry window; the server files each job once."""
        if self.conn is not None:
            disconnect(self.conn)
            self.conn = None
        self.unsent.clear()
        busy, self.busy = self.busy, True
        try:
            while self.pending:
                self._confirm(self.pending[0])
                del self.pending[0]
        finally:
            self.busy = busy

    def _confirm(self, entry: tuple[Any, ...]) -> None:
        """Push ``entry`` again, marked, and wait for it: filed, or recorded as refused."""
        server = self.server
        try:
            server.call("add", lambda retried: server.script("push", (*entry, "1")))
        except StoreUnavailable:
            raise
        except StoreError as exc:
            self.refused.append((str(entry[1]), str(exc.__cause__ or exc)))

    def finish(self) -> None:
        """Confirm every push of the block; raise EnqueueFailed naming those not filed."""
        try:
            self.read()
        except StoreUnavailable as exc:
            ids = [str(entry[1]) for entry in self.pending]
            refused = [job_id for job_id, _ in self.refused]
            raise EnqueueFailed(
                f"{exc}; {len(ids)} job push(es) of the batch are not confirmed and may not be "
                f"enqueued (jobs {_some(ids)})"
                + (f", and {len(refused)} were refused (jobs {_some(refused)})" if refused else ""),
                refused + ids,
            ) from exc
        finally:
            if self.conn is not None:
                # A connection with replies left unread cannot serve another call.
                (self.server._give_back if not self.pending else disconnect)(self.conn)
                self.conn = None
        if self.refused:
            ids = [job_id for job_id, _ in self.refused]
            raise EnqueueFailed(
                f"Redis at {self.server.where} refused {len(ids)} job push(es) of the batch "
                f"(jobs {_some(ids)}): {self.refused[0][1]}; those jobs were not enqueued",
                ids,
            )


def _some(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
