"""One Redis server as this process sees it: URL parsing, the client, the scripts, the change feed."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..._outage import outage
from ..._process import current_pid
from ...errors import EnqueueFailed, StoreError, StoreUnavailable
from .._signal import ChangeSignal
from ._junk import eviction_warning, read_policy, unwrap
from ._lua import assemble

try:
    import redis
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the redis:// store needs the redis client library: pip install 'baozi[redis]'"
    ) from exc

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - depends on what is installed
    _hiredis_pack = None

log = logging.getLogger("baozi.redis")

T = TypeVar("T")

SCRIPTS = (
    "kv",
    "slots",
    "rate",
    "discard",
    "add",
    "reserve",
    "pop",
    "lease",
    "settle",
    "rank",
    "items",
    "counts",
    "clear",
    "cancel",
    "requeue",
    "jobs",
    "progress",
    "purge",
    "workers",
    "push",
    "junk",
    "queue",
)

_FAILURES = (redis.ConnectionError, redis.TimeoutError, OSError)


def parse_url(url: str) -> tuple[str, str, float]:
    """Split baozi's own options (``prefix``, ``retry``) off a redis:// or rediss:// URL.

    Returns the URL for the client library, the key prefix and the retry window in seconds.
    """
    parts = urlsplit(url)
    prefix, retry = "baozi", 2.0
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "prefix":
            if not value or any(c in value for c in " {}"):
                raise ValueError(
                    f"invalid prefix {value!r} in {url!r}: use a non-empty key prefix without "
                    "spaces or braces, such as ?prefix=myapp"
                )
            prefix = value
        elif key == "retry":
            try:
                retry = float(value)
            except ValueError:
                retry = -1.0
            if not (retry >= 0 and math.isfinite(retry)):
                raise ValueError(
                    f"invalid retry={value!r} in {url!r}: give the seconds to keep retrying a "
                    "call while Redis is unreachable, such as ?retry=2"
                )
        elif key in ("decode_responses", "protocol", "encoding"):
            raise ValueError(
                f"{key}= in {url!r} is not supported: baozi reads the server's replies itself "
                "(bytes, RESP2); leave it out"
            )
        else:
            rest.append((key, value))
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return client_url, prefix, retry


INGESTING = frozenset(
    ("add", "reserve", "pop", "rank", "items", "counts", "jobs", "cancel", "requeue")
    + ("clear", "discard", "queue")
)
"""The scripts that read or order a queue's items: each first files the inbox (see the prelude)."""


PRELUDE_MARK = "-- @prelude\n"
"""In a script whose first part runs bare (``push``), where the prelude's definitions go: the
part before it ends most calls before they are defined."""


def _load(name: str, prelude: str) -> str:
    text = resources.files(__package__).joinpath(f"lua/{name}.lua").read_text()
    head, _, body = text.rpartition(PRELUDE_MARK)
    ingest = "ingest_all()\n" if name in INGESTING else ""
    # The body runs as a function so that finish() can add the moves to quarantine to its reply.
    return head + assemble(
        prelude, f"local function main()\n{ingest}{body}\nend\nreturn finish(main())\n"
    )


def _disconnect(conn: Any) -> None:
    """Close a connection that may be broken already."""
    try:
        conn.disconnect()
    except Exception:  # noqa: BLE001, S110 -- closing a broken connection
        pass


class _Lost(Exception):
    """The connection failed after a command was sent: it may have run (raised from the cause)."""


class Server:
    """What one process shares for one URL: a connection pool, the scripts and the change signal.

    Handles share it through a reference count; the last one to close it disconnects.
    """

    _registry: ClassVar[dict[tuple[int, str], Server]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def acquire(cls, url: str) -> Server:
        key = (current_pid(), url)  # a forked child must not share its parent's sockets
        with cls._registry_lock:
            server = cls._registry.get(key)
            if server is None:
                server = cls._registry[key] = cls(url)
            server.refs += 1
            return server

    def release(self) -> None:
        with self._registry_lock:
            self.refs -= 1
            if self.refs > 0:
                return
            self._registry.pop((current_pid(), self.url), None)
        self._released = True  # a call still in flight closes its connection when it ends
        self._feed.close()
        self.signal.close()
        self._drop_idle()
        self.client.close()
        self.client.connection_pool.disconnect()

    def __init__(self, url: str) -> None:
        self.url = url
        client_url, self.prefix, self.retry = parse_url(url)
        self.refs = 0
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
                # Every reply is read raw by this module, in RESP2's shapes (a hash as a flat
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
        prelude = resources.files(__package__).joinpath("lua/_prelude.lua").read_text()
        self.sources = {name: _load(name, prelude) for name in SCRIPTS}
        self.shas = {
            name: hashlib.sha1(text.encode()).hexdigest() for name, text in self.sources.items()
        }
        self._idle: list[Any] = []
        self.known: set[str] = set()  # queues this process has seen recorded in the store
        self._released = False
        self.channel = f"{self.prefix}:changed"
        self.inbox = f"{self.prefix}:in"
        # Jobs handed to this process's idle workers come on a channel of its own, to the
        # receiver of the worker (owner) they are leased to.
        self.hand_channel = f"{self.prefix}:hand:{secrets.token_hex(8)}"
        self.receivers: dict[str, Callable[[str, list[Any], Callable[[], None]], object]] = {}
        self.received: dict[str, int] = {}  # handed jobs each receiver has taken in
        self._waits_on: dict[str, set[str]] = {}  # the queues each receiver may wait idle on
        self._hands = _HandReader(self)
        self.signal = ChangeSignal()
        self._feed = _Feed(self)
        self._local = threading.local()  # a thread's batch block (see batch())
        self._policy_checked = False

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
            except (*_FAILURES, _Lost) as exc:
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

    def _take(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def _give_back(self, conn: Any) -> None:
        if self._released:
            conn.disconnect()
        else:
            self._idle.append(conn)

    def _drop_idle(self) -> None:
        while self._idle:
            _disconnect(self._idle.pop())

    # -- job pushes -----------------------------------------------------------------------------

    def push(self, entry: tuple[Any, ...], queue: str) -> None:
        """File one job: one script run appends it to the inbox and hands what is ready to a
        worker waiting idle on ``queue`` (or announces it). Returns once the server has run it.

        Inside this thread's :meth:`batch` block the push is written and its reply read later.
        """
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            batch.send(entry)
            return
        # Sent again after a lost reply, it is marked, and the server files the job once.
        self.call("add", lambda retried: self.script("push", (*entry, "1" if retried else "0")))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """A block in which this thread's job pushes are not waited for one by one: their
        replies are read as they pile up and when the block ends, which raises EnqueueFailed
        naming any job the server refused. A nested block joins the outer one."""
        if getattr(self._local, "batch", None) is not None:
            yield
            return
        batch = self._local.batch = _Batch(self)
        try:
            yield
        finally:
            self._local.batch = None
            batch.finish()

    def _read_own_pushes(self) -> None:
        """Read the replies of this thread's batched pushes, so that it reads its own writes."""
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None and batch.pending and not batch.busy:
            batch.read()

    def execute(self, *command: Any) -> Any:
        """Send one command and read its reply, on a connection of this process's own.

        Connections are kept in a plain list (LIFO, so the busiest stay warm): taking one is a
        list pop, where the client library's pool would take a lock and look at it each time.
        A failure after the command was sent is raised as :class:`_Lost`.
        """
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

    def _connect(self) -> Any:
        pool = self.client.connection_pool
        return pool.connection_class(**pool.connection_kwargs)

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
        return self.call(name, lambda retried: self.script(name, args), retry_sent)

    def token(self) -> int:
        self._feed.ensure()
        return self.signal.token()

    def receive(
        self, owner: str, receiver: Callable[[str, list[Any], Callable[[], None]], object] | None
    ) -> None:
        """Have jobs handed to ``owner`` given to ``receiver`` (on a hand-off reader's thread,
        as the queue, the reserve script's flat reply, and a function to call once they are
        counted as the worker's own); None stops that, and takes the owner off every queue."""
        if receiver is not None:
            self.receivers[owner] = receiver
            self.received.setdefault(owner, 0)
            self._hands.ensure()
            return
        self.receivers.pop(owner, None)
        queues = self._waits_on.pop(owner, set())
        commands: list[tuple[Any, ...]] = [
            ("ZREM", f"{self.prefix}:q:{q}:w", owner) for q in sorted(queues)
        ]
        commands.append(("HDEL", f"{self.prefix}:wi", owner))
        commands.append(("HDEL", f"{self.prefix}:wh", owner))
        self.received.pop(owner, None)
        self.call("stop hand-offs", lambda retried: self.pipeline(*commands))

    def hand_to(self, owner: str, queue: str) -> tuple[str, int]:
        """What a reserve by ``owner`` names so that it waits idle for jobs handed to it: the
        channel ('' when it does not receive them, or the reader is down) and how many handed
        jobs it has taken in."""
        if owner in self.receivers and self._hands.live:
            self._waits_on.setdefault(owner, set()).add(queue)
            return self.hand_channel, self.received.get(owner, 0)
        return "", 0

    def dispatch(self, data: bytes) -> None:
        """Jobs handed to a worker of this process: give them to its receiver."""
        fields = _fields(data)
        queue, owner, flat = fields[0].decode(), fields[1].decode(), fields[2:]
        receiver = self.receivers.get(owner)
        n = len(flat) // 6

        def took() -> None:
            if owner in self.received:
                self.received[owner] += n

        try:
            if receiver is not None:
                receiver(queue, flat, took)
                return
            # Its worker stopped meanwhile: the jobs go back to their place at once.
            self.hand_back(queue, owner, [flat[i].decode() for i in range(0, len(flat), 6)])
        except Exception:  # noqa: BLE001 -- their leases run out and they run again
            log.exception("jobs handed to worker %s: could not take or return them", owner)

    def hand_back(self, queue: str, owner: str, ids: list[str]) -> None:
        """Return handed jobs unstarted to their place, without counting a delivery."""
        self.run("lease", queue, owner, "return", "0.0", *ids)


class _Feed:
    """One thread per process that listens to the store's change channel while anyone waits.

    A token handed out first makes sure the subscription is live, so no change after the token
    is missed. The thread unsubscribes once nobody has asked for a token or waited for
    :data:`LINGER` seconds -- a producer, or a worker with work, receives nothing -- and signals
    as it does, so that a token taken before cannot miss a change: its waiter wakes (spuriously)
    and asks again. When the connection drops it signals too, and reconnects with backoff; until
    it is back, new tokens wait for it.
    """

    LINGER = 1.0

    def __init__(self, server: Server) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._live = threading.Event()  # subscribed
        self._want = threading.Event()  # someone asked for a token
        self._last_want = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._refused: BaseException | None = None

    def ensure(self) -> None:
        if self._refused is not None:
            raise StoreError(
                f"Redis at {self._server.where} refused to subscribe to {self._server.channel} "
                f"({self._refused}); baozi's blocking calls need the SUBSCRIBE command and that "
                f"channel (for an ACL user: +subscribe and &{self._server.prefix}:*)"
            )
        with self._lock:
            self._last_want = time.monotonic()
            if self._live.is_set():
                return
            self._want.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._listen, name="baozi-redis-feed", daemon=True
                )
                self._thread.start()
        server = self._server
        if not self._live.wait(server.retry + 2.5):
            raise StoreUnavailable(
                f"Redis at {server.where} did not answer a subscribe to {server.channel} "
                f"({self._error}); check that redis-server is running and reachable"
            )

    @property
    def live(self) -> bool:
        return self._live.is_set()

    def close(self) -> None:
        self._closed = True
        self._want.set()

    def _idle(self) -> bool:
        """Stop listening if nobody wants to; decided under the lock :meth:`ensure` takes."""
        with self._lock:
            if (
                time.monotonic() - self._last_want < self.LINGER
                or self._server.signal.waiting
                or self._closed
            ):
                return False
            self._want.clear()
            self._live.clear()
        self._server.signal.notify()  # tokens from before the unsubscribe must not wait on it
        return True

    PING_AFTER = 5.0
    """Seconds of silence after which the feed pings the server, and waits as long for the pong
    before it counts the connection as dead (a half-open connection says nothing otherwise)."""

    def _listen(self) -> None:
        # A connection of its own, read directly: the client library's PubSub object spends
        # several times longer on each message, and the thread holds the GIL meanwhile.
        server = self._server
        pause = 0.05
        while not self._closed:
            if not self._want.wait(1.0):
                continue
            conn = server._connect()
            try:
                conn.send_command("SUBSCRIBE", server.channel)
                heard = checked = time.monotonic()
                pinged = 0.0
                while not self._closed:
                    now = time.monotonic()
                    if now - checked >= 0.25:  # also while messages keep coming
                        checked = now
                        if self._live.is_set() and self._idle():
                            break
                    if not conn.can_read(timeout=0.25):
                        now = time.monotonic()
                        if pinged and now - pinged > self.PING_AFTER:
                            raise redis.ConnectionError("no answer to a ping on the change feed")
                        if not pinged and now - heard > self.PING_AFTER:
                            conn.send_command("PING")
                            pinged = now
                        continue
                    reply = conn.read_response()
                    heard, pinged = time.monotonic(), 0.0
                    kind = reply[0]
                    if kind == b"pong":
                        continue
                    if kind == b"subscribe":
                        self._live.set()
                        pause = 0.05
                        outage(server.url).ok("the change feed")
                    server.signal.notify()
            except redis.ResponseError as exc:  # refused: say so, rather than "unreachable"
                self._refused = exc
                self._live.clear()
                self._want.clear()
                server.signal.notify()
                log.warning(
                    "Redis at %s refused the change feed's subscribe: %s", server.where, exc
                )
            except Exception as exc:  # noqa: BLE001 -- any failure: signal, then reconnect
                self._error = exc
                self._live.clear()
                server.signal.notify()  # whatever changed while the line was down
                outage(server.url).failed(_lost(server, exc), "the change feed")
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
            finally:
                _disconnect(conn)


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


def _fields(data: bytes) -> list[bytes]:
    """Split a hand-off message: each value written as its length, ':', the value."""
    out: list[bytes] = []
    i, end = 0, len(data)
    while i < end:
        j = data.index(b":", i)
        k = j + 1 + int(data[i:j])
        out.append(data[j + 1 : k])
        i = k
    return out


def _lost(server: Server, exc: Exception) -> Exception:
    """A listener's failure in baozi's terms: the server refused (it answered), or it is gone."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, redis.ResponseError):
        return StoreError(f"Redis at {server.where} refused: {exc}")
    return StoreUnavailable(f"lost the connection to Redis at {server.where}: {exc}")


class _HandReader:
    """Reads this process's hand-off channel (jobs handed to its idle workers) on a connection
    of its own, while any worker here receives them.

    The thread that reads a message gives the reading over to a second thread -- which waits
    for that, and exists as long as any reader does -- and then hands the jobs to their worker's
    receiver itself, so the receiver may start a job right in this thread, without waking
    another. At most two threads wait to read; more exist only while receivers run jobs.
    """

    PING_AFTER = 5.0

    def __init__(self, server: Server) -> None:
        self._server = server
        self._read = threading.Lock()  # held by the thread that reads
        self._state = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads waiting to read
        self._conn: Any = None
        self._live = threading.Event()
        self._pause = 0.05
        self._heard = self._pinged = 0.0
        self._error: BaseException | None = None

    @property
    def live(self) -> bool:
        return self._live.is_set()

    def ensure(self) -> None:
        with self._state:
            if self._threads == 0:
                self._spawn()
        server = self._server
        if not self._live.wait(server.retry + 2.5):
            if isinstance(self._error, redis.ResponseError):  # it answered: with a refusal
                raise StoreError(
                    f"Redis at {server.where} refused to subscribe to {server.hand_channel} "
                    f"({self._error}); idle workers need the SUBSCRIBE command and that channel "
                    f"(for an ACL user: +subscribe and &{server.prefix}:*)"
                )
            raise StoreUnavailable(
                f"Redis at {server.where} did not answer a subscribe to {server.hand_channel} "
                f"({self._error}); check that redis-server is running and reachable"
            )

    def _spawn(self) -> None:  # holds _state
        self._threads += 1
        threading.Thread(target=self._run, name="baozi-redis-hand", daemon=True).start()

    def _run(self) -> None:
        server = self._server
        try:
            while server.receivers and not server._released:
                with self._state:
                    if self._waiting >= 2:
                        return  # enough threads wait already
                    self._waiting += 1
                self._read.acquire()
                try:
                    with self._state:
                        self._waiting -= 1
                        if self._waiting == 0:
                            self._spawn()  # the next to read, while this one may work
                    data = self._next()
                finally:
                    self._read.release()
                if data is not None:
                    server.dispatch(data)
        finally:
            with self._state:
                self._threads -= 1
                if self._threads == 0 and server.receivers and not server._released:
                    self._spawn()  # a receiver came while this one was leaving
                last = self._threads == 0
            if last:
                with self._read, self._state:
                    if self._threads == 0:  # still: no reader started meanwhile
                        self._close()

    def _close(self) -> None:  # holds _read
        self._live.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            _disconnect(conn)

    def _next(self) -> bytes | None:
        """One hand-off message, or None after a second without one (or a failure)."""
        server = self._server
        try:
            if self._conn is None:
                conn = server._connect()
                conn.send_command("SUBSCRIBE", server.hand_channel)
                self._conn = conn
                self._heard, self._pinged = time.monotonic(), 0.0
            conn = self._conn
            if not conn.can_read(timeout=1.0):
                now = time.monotonic()
                if self._pinged and now - self._pinged > self.PING_AFTER:
                    raise redis.ConnectionError("no answer to a ping on the hand-off channel")
                if not self._pinged and now - self._heard > self.PING_AFTER:
                    conn.send_command("PING")
                    self._pinged = now
                return None
            reply = conn.read_response()
            self._heard, self._pinged = time.monotonic(), 0.0
            if reply[0] == b"message":
                return bytes(reply[2])
            if reply[0] == b"subscribe":
                # Jobs handed while no reader listened are lost on the way (their leases run
                # out and they run again): none of them is on its way any more.
                for owner in list(server.receivers):
                    handed = server.execute("HGET", f"{server.prefix}:wh", owner)
                    server.received[owner] = int(handed or 0)
                self._live.set()
                self._pause = 0.05
                outage(server.url).ok("the hand-off channel")
            return None
        except Exception as exc:  # noqa: BLE001 -- any failure: reconnect with backoff
            self._error = exc
            outage(server.url).failed(_lost(server, exc), "the hand-off channel")
            self._close()
            time.sleep(self._pause)
            self._pause = min(self._pause * 2, 2.0)
            return None


class Ids:
    """Item ids made by the client: a random per-process prefix and a counter.

    Made here rather than by the server so that a push retried after a dropped reply can tell
    whether it already went through, instead of adding its items twice.
    """

    def __init__(self) -> None:
        self._pid = -1
        self._lock = threading.Lock()
        self._prefix = ""
        self._count = itertools.count()

    def take(self, n: int) -> list[str]:
        if self._pid != current_pid():
            with self._lock:
                if self._pid != current_pid():
                    self._prefix = secrets.token_hex(8)
                    self._count = itertools.count()
                    self._pid = current_pid()
        # next() on a count is atomic: threads taking ids at once get different numbers.
        prefix, count = self._prefix, self._count
        return [f"{prefix}{next(count):x}" for _ in range(n)]


IDS = Ids()


class _Batch:
    """The job pushes of one thread's batch block: written to one connection without waiting,
    their replies read once :data:`WINDOW` are pending, when the thread calls the store for
    anything else, and when the block ends."""

    WINDOW = 512
    SEND_EVERY = 64

    def __init__(self, server: Server) -> None:
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
                self.conn = self.server._connect()
            self.conn.send_packed_command([data], check_health=False)
        except _FAILURES:
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
        except _FAILURES:
            self._resend()
        for entry in again:  # by name this time, which loads the script
            self._confirm(entry)

    def _resend(self) -> None:
        """Send every pending push again on a new connection, marked, and read the replies,
        retrying for the store's retry window; the server files each job once."""
        if self.conn is not None:
            _disconnect(self.conn)
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
                (self.server._give_back if not self.pending else _disconnect)(self.conn)
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
