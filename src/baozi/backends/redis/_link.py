"""This process's link to one Redis server: its connections, commands and scripts, retried while
the server is unreachable, and the client library's errors in baozi's terms."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from ...errors import StoreError, StoreUnavailable
from ._junk import eviction_warning, read_policy, unwrap
from ._layout import opened
from ._scripts import load_scripts
from ._url import parse_url

if TYPE_CHECKING:
    from ._pushes import _Batch

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - depends on what is installed
    _hiredis_pack = None

log = logging.getLogger("baozi.redis")

T = TypeVar("T")

FAILURES = (redis.ConnectionError, redis.TimeoutError, OSError)
"""What the client library raises when the server cannot be reached."""


def pack(command: tuple[Any, ...]) -> bytes:
    """One command in the Redis protocol (RESP), as the server reads it.

    Written here (by hiredis when it is installed), not by the client library, whose packer
    costs several times more per command on the enqueue path. Values are bytes, str (UTF-8),
    int or float, as the library takes them.
    """
    if _hiredis_pack is not None:
        try:
            return _hiredis_pack(command)
        except TypeError:  # a bytearray, say: packed below
            pass
    out = [b"*%d\r\n" % len(command)]
    for value in command:
        if type(value) is str:
            value = value.encode()
        elif isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = b"%d" % value
        elif isinstance(value, float):
            value = repr(float(value)).encode()
        else:
            raise TypeError(f"cannot send {type(value).__name__} {value!r} to Redis")
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(out)


def disconnect(conn: Any) -> None:
    """Close a connection that may be broken already."""
    try:
        conn.disconnect()
    except Exception:  # noqa: BLE001, S110 -- closing a broken connection
        pass


class _Lost(Exception):
    """The connection failed after a command was sent: it may have run (raised from the cause)."""


class _ThreadState(threading.local):
    """What the store keeps per thread: the thread's batch block, if it is in one. (A class
    default, not getattr with a default: that raises and catches on every call outside a block.)
    """

    batch: _Batch | None = None


class Link:
    """One Redis server as this process calls it: a URL's client, its connections and the scripts.

    Connections are kept in a plain list (LIFO, so the busiest stay warm): taking one is a list
    pop, where the client library's pool would take a lock and look at it each time.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        client_url, self.prefix, self.retry = parse_url(url)
        try:
            # Any: the library types its sync and async clients as one, which helps no caller here.
            self.client: Any = redis.Redis.from_url(
                client_url,
                socket_connect_timeout=2.0,
                socket_timeout=30.0,
                socket_keepalive=True,
                health_check_interval=30,
                retry_on_timeout=False,
                retry=None,
                client_name=f"baozi:{self.prefix}",
                # Every reply is read raw by this package, in RESP2's shapes (a hash as a flat
                # list, pub/sub messages as arrays): redis-py 8 speaks RESP3 unless told not to.
                protocol=2,
            )
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL {url!r}: {exc}") from exc
        kwargs = self.client.connection_pool.connection_kwargs
        self.where = (
            kwargs.get("path")
            or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
        )
        self.sources, self.shas = load_scripts()
        self._idle: list[Any] = []
        self._released = False
        self._local = _ThreadState()  # a thread's batch block (see Pushes.batch())
        self._policy_checked = False

    def _close(self) -> None:
        self._released = True  # a call still in flight closes its connection when it ends
        self._drop_idle()
        self.client.close()
        self.client.connection_pool.disconnect()

    def call(self, what: str, fn: Callable[[bool], T], retry_sent: bool = True) -> T:
        """Run ``fn`` (one round trip), retrying while the server is unreachable, for at most the
        retry window; then raise StoreUnavailable, which is also a ConnectionError.

        ``fn`` is told whether this is a retry. A command lost after it was sent may have run
        with its reply lost: it is retried only with ``retry_sent`` (the scripts are safe to run
        again, or say so in their reply); otherwise StoreUnavailable is raised at once.
        """
        deadline = time.monotonic() + self.retry
        pause = 0.0  # the first retry is at once: it runs on a fresh connection
        retried = False
        while True:
            try:
                return fn(retried)
            except (redis.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
                raise StoreUnavailable(
                    f"Redis at {self.where} refused the credentials ({exc}); check the user and "
                    f"password in the store URL"
                ) from exc
            except (*FAILURES, _Lost) as exc:
                self._drop_idle()  # every pooled connection predates the failure
                cause = exc.__cause__ if isinstance(exc, _Lost) else exc
                left = deadline - time.monotonic()
                if left <= 0 or (isinstance(exc, _Lost) and not retry_sent):
                    raise self._unavailable(what, cause) from cause
                time.sleep(min(pause, left))
                pause = min(max(pause * 2, 0.02), 0.5)
                retried = True
            except redis.ResponseError as exc:
                raise StoreError(f"Redis at {self.where} refused {what}: {exc}") from exc

    def _unavailable(self, what: str, cause: BaseException | None) -> StoreUnavailable:
        if isinstance(cause, redis.exceptions.BusyLoadingError):  # it answered: not ready yet
            return StoreUnavailable(
                f"Redis at {self.where} is still loading its data set and refused {what} "
                f"({cause}); retried for {self.retry:g}s (the window is the URL's ?retry=SECONDS)"
            )
        return StoreUnavailable(
            f"Redis at {self.where} did not answer {what} ({cause}); retried for "
            f"{self.retry:g}s. Check that redis-server is running and reachable "
            f"(the window is the URL's ?retry=SECONDS)"
        )

    def _connect(self) -> Any:
        pool = self.client.connection_pool
        return pool.connection_class(**pool.connection_kwargs)

    def _take(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            return opened(self, self._connect())  # the first one checks the store's layout

    def _give_back(self, conn: Any) -> None:
        if self._released:
            conn.disconnect()
        else:
            self._idle.append(conn)

    def _drop_idle(self) -> None:
        while self._idle:
            disconnect(self._idle.pop())

    def _read_own_pushes(self) -> None:
        """Read the replies of this thread's batched pushes, so that it reads its own writes."""
        batch = self._local.batch
        if batch is not None and batch.pending and not batch.busy:
            batch.read()

    def execute(self, *command: Any) -> Any:
        """Send one command and read its reply, on a connection of this process's own. A failure
        after the command was sent is raised as :class:`_Lost`."""
        self._read_own_pushes()
        conn = self._take()
        try:
            conn.send_packed_command([pack(command)])
        except BaseException:
            conn.disconnect()
            raise
        try:
            reply = conn.read_response()
        except redis.ResponseError:
            self._give_back(conn)  # the reply was read whole: the connection is fine
            raise
        except BaseException as exc:
            conn.disconnect()
            if isinstance(exc, Exception):
                raise _Lost() from exc
            raise
        self._give_back(conn)
        return reply

    def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send several commands at once and read their replies: one round trip. A command the
        server refused has its ResponseError in its place among the replies."""
        self._read_own_pushes()
        conn = self._take()
        try:
            conn.send_packed_command([b"".join(map(pack, commands))])
        except BaseException:
            conn.disconnect()
            raise
        replies: list[Any] = []
        try:
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException as exc:
            conn.disconnect()
            if isinstance(exc, Exception):
                raise _Lost() from exc
            raise
        self._give_back(conn)
        return replies

    def script(self, name: str, args: tuple[Any, ...]) -> Any:
        """Run a script by its digest, loading it first when the server does not have it (a new
        server, or one that restarted); what it moved to quarantine is logged."""
        reply = unwrap(self._script(name, args), self.where)
        if not self._policy_checked:  # once the server answers
            self._policy_checked = True
            self.eviction_warning(log_it=True)
        return reply

    def eviction_warning(self, log_it: bool = False) -> str | None:
        """Why the server may lose jobs by evicting keys (its ``maxmemory-policy``), or None."""
        warning = eviction_warning(read_policy(self.client), self.where)
        if warning and log_it:
            log.warning("%s", warning)
        return warning

    def _script(self, name: str, args: tuple[Any, ...]) -> Any:
        while True:
            try:
                try:
                    return self.execute("EVALSHA", self.shas[name], 0, self.prefix, *args)
                except redis.exceptions.NoScriptError:
                    self.execute("SCRIPT", "LOAD", self.sources[name])
                    return self.execute("EVALSHA", self.shas[name], 0, self.prefix, *args)
            except redis.ResponseError as exc:
                if not str(exc).startswith("BAOZI_MORE"):
                    raise
                # It filed part of a big inbox and stopped: run it again (it files more first).

    def run(self, name: str, *args: Any, retry_sent: bool = True) -> Any:
        """Run script ``name`` with ``args`` through :meth:`call`."""
        return self.call(name, lambda retried: self.script(name, args), retry_sent)
