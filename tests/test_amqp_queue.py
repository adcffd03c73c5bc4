"""baozi.Queue on amqp://: a FIFO queue over a RabbitMQ quorum queue, shared with plain AMQP
programs written the tutorial's way (pika, durable queue, delivery_mode=2, prefetch 1, acks)."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pika
import pytest

import baozi
from baozi import App, Deque, LifoQueue, NotSupported, PriorityQueue, Queue
from baozi.amqp.queue import AmqpQueue

from ._helpers import wait_for

AMQP_URL = os.environ.get("BAOZI_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
ROOT = Path(__file__).resolve().parents[1]


def _amqp_or_skip() -> None:
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception as exc:  # noqa: BLE001 -- whatever stops a connection: no broker here
        reason = f"no RabbitMQ at {AMQP_URL} ({exc}); set BAOZI_TEST_AMQP or start rabbitmq-server"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def plain() -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A channel of a plain pika program, as the tutorial opens one."""
    _amqp_or_skip()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    yield connection.channel()
    connection.close()


@pytest.fixture
def name() -> Iterator[str]:
    """A queue name of this test's own, deleted (with its undecodable side queue) after."""
    _amqp_or_skip()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    yield queue
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for each in (queue, f"{queue}.undecodable"):
        channel.queue_delete(each)
    connection.close()


def _plain_get(channel: object, queue: str) -> tuple[pika.BasicProperties, bytes]:
    for _ in range(100):
        method, properties, body = channel.basic_get(queue, auto_ack=True)  # type: ignore[attr-defined]
        if method is not None:
            return properties, body
        time.sleep(0.02)
    raise AssertionError(f"no message in {queue}")


# -- what is refused, and where --------------------------------------------------------------


def test_rabbitmq_is_no_store_and_says_what_to_use_instead(name: str) -> None:
    with pytest.raises(NotSupported, match=r"being a store.*baozi.Queue\(name, url=") as info:
        App(AMQP_URL)
    assert "guest:***@" in str(info.value) and "guest:guest" not in str(info.value)
    for variant in (LifoQueue, PriorityQueue):
        with pytest.raises(NotSupported, match=f"a {variant.__name__}.*FIFO only"):
            variant(name, url=AMQP_URL)
    with pytest.raises(NotSupported, match="a Deque"):
        Deque(name, url=AMQP_URL)
    with Queue(name, url=AMQP_URL) as q:
        assert isinstance(q, AmqpQueue)
        with pytest.raises(NotSupported, match="join"):
            q.join()
        with pytest.raises(NotSupported, match="position"):
            q.position("x")


def test_the_cli_refuses_an_amqp_url_as_a_store() -> None:
    _amqp_or_skip()
    done = subprocess.run(
        [sys.executable, "-m", "baozi", "status", "--url", AMQP_URL],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "does not support being a store" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_every_public_method_of_queue_has_its_rabbitmq_counterpart() -> None:
    # What Queue gains later must be given a meaning (or a NotSupported) on RabbitMQ too.
    # Both build get, get_many, empty, full and the like on their own _take, _decode, put,
    # qsize and close (QueueInterface); the rest each defines.
    public = {n for n in vars(Queue) if not n.startswith("_")}
    assert public - set(vars(AmqpQueue)) == set()
    for method in ("_take", "_decode", "put", "qsize", "close"):
        assert method in vars(AmqpQueue) and method in vars(Queue), method
    params = inspect.signature(Queue).parameters
    assert list(params)[:3] == ["name", "url", "maxsize"]
    assert list(inspect.signature(AmqpQueue).parameters)[:3] == ["name", "url", "maxsize"]


def test_bad_arguments_are_refused_before_anything_is_declared(name: str) -> None:
    with pytest.raises(ValueError, match="at most 243 bytes"):
        Queue("é" * 200, url=AMQP_URL)
    with pytest.raises(ValueError, match="'amq.' are RabbitMQ's own"):
        Queue("amq.mine", url=AMQP_URL)
    with pytest.raises(ValueError, match="maxsize must be"):
        Queue(name, url=AMQP_URL, maxsize=-1)
    with pytest.raises(TypeError, match="lease"):
        Queue(name, url=AMQP_URL, lease=5)  # no leases on RabbitMQ: acks and redelivery


def test_an_unreachable_broker_raises_store_unavailable_naming_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(baozi.StoreUnavailable, match=f"127.0.0.1:{port}.*cannot be reached"):
        Queue("x", url=f"amqp://guest:guest@127.0.0.1:{port}/%2F", connect_timeout=0.5)
    assert time.monotonic() - t0 < 10


# -- bodies ------------------------------------------------------------------------------------


def test_bodies_go_as_text_bytes_json_or_baozi_json_by_what_they_hold(name: str, plain) -> None:
    values = [
        "a str, ünïcode",
        b"\x00\xffraw",
        {"id": 7, "items": ["bun", "tea"], "price": 2.5, "ok": True, "note": None},
        [1, 2, 3],
        ("a", "tuple"),
        {"when": dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)},
        {1: "int key"},
        Decimal("1.10"),
        float("nan"),
    ]
    with Queue(name, url=AMQP_URL) as q:
        q.put_many(values)
    seen = [_plain_get(plain, name) for _ in values]
    assert [p.content_type for p, _ in seen] == [
        "text/plain; charset=utf-8",
        "application/octet-stream",
        "application/json",
        "application/json",
        *["application/x-baozi+json"] * 5,
    ]
    assert all(p.delivery_mode == 2 for p, _ in seen)  # persistent
    assert seen[0][1] == "a str, ünïcode".encode()
    assert seen[1][1] == b"\x00\xffraw"
    assert json.loads(seen[2][1]) == values[2]  # plain JSON, for any reader
    # And baozi reads each back as it was put.
    with Queue(name, url=AMQP_URL) as q:
        q.put_many(values)
        got = [q.get(timeout=5) for _ in values]
        q.task_done(len(values))
    assert got[:8] == values[:8] and type(got[4]) is tuple and got[8] != got[8]


def test_a_value_no_codec_can_hold_is_refused_at_put_and_nothing_is_sent(name: str) -> None:
    with Queue(name, url=AMQP_URL) as q:
        with pytest.raises(TypeError):
            q.put_many(["fine", object()])
        assert q.qsize() == 0


def test_a_body_that_is_not_what_its_type_says_is_moved_aside_and_the_rest_flow(
    name: str, plain
) -> None:
    plain.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    for body, ctype in ((b"{not json", "application/json"), (b'{"fine": 1}', "application/json")):
        plain.basic_publish(
            "", name, body, pika.BasicProperties(delivery_mode=2, content_type=ctype)
        )
    with Queue(name, url=AMQP_URL) as q:
        with pytest.raises(baozi.UndecodableItem, match=f"{name}.undecodable"):
            q.get(timeout=5)
        assert q.get(timeout=5) == {"fine": 1}
        q.task_done()
        assert q.qsize() == 0
    properties, body = _plain_get(plain, f"{name}.undecodable")
    assert body == b"{not json" and properties.content_type == "application/json"


# -- trading with plain AMQP programs, the tutorial's way --------------------------------------

_TUTORIAL_PRODUCER = """
import json, sys, pika
url, queue, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.queue_declare(queue=queue, durable=True)
for i in range(n):
    if i % 2:
        channel.basic_publish(exchange="", routing_key=queue, body=f"task {i}",
                              properties=pika.BasicProperties(delivery_mode=2))
    else:
        channel.basic_publish(exchange="", routing_key=queue, body=json.dumps({"task": i}),
                              properties=pika.BasicProperties(delivery_mode=2,
                                                              content_type="application/json"))
connection.close()
"""

_TUTORIAL_CONSUMER = """
import sys, pika
url, queue, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": "quorum"})
seen = []
def callback(ch, method, properties, body):
    seen.append(f"{properties.content_type}|{body.decode()}")
    ch.basic_ack(delivery_tag=method.delivery_tag)
    if len(seen) == n:
        ch.stop_consuming()
channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue=queue, on_message_callback=callback)
channel.start_consuming()
print("\\n".join(seen))
connection.close()
"""


def test_a_tutorial_producer_feeds_a_baozi_consumer(name: str) -> None:
    # The producer comes first and declares a classic durable queue, as the tutorial does:
    # baozi's handle, opened without maxsize, adopts it as it is.
    subprocess.run(
        [sys.executable, "-c", _TUTORIAL_PRODUCER, AMQP_URL, name, "6"], check=True, timeout=60
    )
    with Queue(name, url=AMQP_URL) as q:
        assert q.qsize() == 6 and q.maxsize == 0
        got = [q.get(timeout=5) for _ in range(6)]
        q.task_done(6)
    # JSON by its content type; no content type: the bytes as they are.
    assert got == [{"task": 0}, b"task 1", {"task": 2}, b"task 3", {"task": 4}, b"task 5"]


def test_a_baozi_producer_feeds_a_tutorial_consumer(name: str) -> None:
    with Queue(name, url=AMQP_URL) as q:
        q.put_many(["one", {"n": 2}, b"three"])
    done = subprocess.run(
        [sys.executable, "-c", _TUTORIAL_CONSUMER, AMQP_URL, name, "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split("\n")[:3] == [
        "text/plain; charset=utf-8|one",
        'application/json|{"n":2}',
        "application/octet-stream|three",
    ]
    with Queue(name, url=AMQP_URL) as q:
        assert q.qsize() == 0


# -- delivery ----------------------------------------------------------------------------------


def test_fifo_and_task_done_acks_the_oldest_unacked(name: str, plain) -> None:
    with Queue(name, url=AMQP_URL) as q:
        q.put_many(range(5))
        assert [q.get(timeout=5) for _ in range(3)] == [0, 1, 2]
        assert q.qsize() == 2  # ready only: the 3 unacked are not counted
        q.task_done(2)  # 0 and 1
        with pytest.raises(ValueError, match="task_done\\(\\) called too many times"):
            q.task_done(2)
    # Closing put back the unacked 2 (not 0 or 1): the broker delivers it again, first. (The
    # broker requeues it as it sees the channel close: a moment after the close returns.)
    with Queue(name, url=AMQP_URL) as q:
        wait_for(lambda: q.qsize() == 3, timeout=10)
        assert [q.get(timeout=5) for _ in range(3)] == [2, 3, 4]
        q.task_done(3)
        assert q.empty()


def test_a_waiting_get_holds_only_what_it_was_asked_for(name: str, plain) -> None:
    # The prefetch is what the caller takes: a handle blocked in get() does not pull a batch of
    # messages away from other consumers.
    with Queue(name, url=AMQP_URL) as q:
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
        waiter.start()
        time.sleep(0.3)
        with Queue(name, url=AMQP_URL) as producer:
            producer.put_many(["a", "b", "c"])
        waiter.join(10)
        assert got == ["a"]
        time.sleep(0.2)
        assert q.qsize() == 2
        # Never delivered before: the waiting consumer did not take them and put them back.
        for expected in (b"b", b"c"):
            method, _, body = plain.basic_get(name, auto_ack=True)
            assert body == f'"{expected.decode()}"'.encode() or body == expected
            assert method.redelivered is False, expected
        q.task_done()


def test_get_times_out_with_empty_and_get_many_takes_what_is_ready(name: str) -> None:
    with Queue(name, url=AMQP_URL) as q:
        t0 = time.monotonic()
        with pytest.raises(baozi.Empty):
            q.get(timeout=0.3)
        assert 0.25 <= time.monotonic() - t0 < 5
        with pytest.raises(baozi.Empty):
            q.get_nowait()
        q.put_many(range(3))
        assert q.get_many(10, timeout=1) == [0, 1, 2]
        q.task_done(3)


def test_reserve_acks_on_success_and_puts_back_on_error(name: str) -> None:
    with Queue(name, url=AMQP_URL) as q:
        q.put_many(["x", "y"])
        with pytest.raises(RuntimeError):
            with q.reserve(timeout=5) as item:
                assert item == "x"
                raise RuntimeError("handler failed")
        with q.reserve(timeout=5) as item:
            first = item
        rest = q.get(timeout=5)
        q.task_done()
    assert sorted([first, rest]) == ["x", "y"]  # x came back and was delivered again


def test_threads_share_one_handle_and_every_message_arrives_once(name: str) -> None:
    n, threads = 400, 4
    with Queue(name, url=AMQP_URL) as q:
        got: list[int] = []
        lock = threading.Lock()

        def produce(k: int) -> None:
            for i in range(k, n, threads):
                q.put(i)

        def consume() -> None:
            while True:
                try:
                    item = q.get(timeout=2)
                except baozi.Empty:
                    return
                with lock:
                    got.append(item)
                q.task_done()

        workers = [threading.Thread(target=produce, args=(k,)) for k in range(threads)]
        workers += [threading.Thread(target=consume) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert sorted(got) == list(range(n))
        assert q.qsize() == 0


_KILLED_CONSUMER = """
import sys, time
import baozi
q = baozi.Queue(sys.argv[2], url=sys.argv[1])
got = [q.get(timeout=10) for _ in range(3)]
print("got", got, flush=True)
time.sleep(60)
"""


def test_a_consumer_killed_with_unacked_messages_has_them_redelivered_at_once(name: str) -> None:
    with Queue(name, url=AMQP_URL) as q:
        q.put_many(range(5))
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_CONSUMER, AMQP_URL, name],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "got [0, 1, 2]"
            assert q.qsize() == 2
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            child.kill()
        t0 = time.monotonic()
        got = sorted(q.get_many(5, timeout=10) + _drain(q))
        assert got == [0, 1, 2, 3, 4]
        assert time.monotonic() - t0 < 5  # no lease to run out: at once
        q.task_done(5)


def _drain(q: Queue) -> list[object]:
    out: list[object] = []
    while True:
        try:
            out += q.get_many(10, timeout=0.5)
        except baozi.Empty:
            return out


def test_a_forked_child_gets_a_connection_of_its_own(name: str, tmp_path: Path) -> None:
    with Queue(name, url=AMQP_URL) as q:
        q.put_many(["parent", "child"])
        assert q.get(timeout=5) == "parent"
        pid = os.fork()
        if pid == 0:  # pragma: no cover -- the child
            code = 1
            try:
                (tmp_path / "child").write_text(repr(q.get(timeout=5)))
                q.task_done()
                q.put("from child")
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        assert (tmp_path / "child").read_text() == "'child'"
        q.task_done()  # the parent's own, on the parent's connection
        assert q.get(timeout=5) == "from child"
        q.task_done()
        assert q.qsize() == 0


# -- maxsize -----------------------------------------------------------------------------------


def test_maxsize_is_exact_and_a_full_queue_raises_full(name: str) -> None:
    with Queue(name, url=AMQP_URL, maxsize=3) as q:
        q.put_many([1, 2, 3])
        assert q.full() and q.qsize() == 3
        with pytest.raises(baozi.Full, match="is full \\(3 messages\\)"):
            q.put_nowait(4)
        t0 = time.monotonic()
        with pytest.raises(baozi.Full):
            q.put(4, timeout=0.3)
        assert time.monotonic() - t0 >= 0.25
        with pytest.raises(ValueError, match="smaller batches"):
            q.put_many(range(4))
        assert q.qsize() == 3


def test_a_blocking_put_goes_in_once_a_consumer_makes_room(name: str) -> None:
    with Queue(name, url=AMQP_URL, maxsize=2) as q:
        q.put_many(["a", "b"])

        def make_room() -> None:
            time.sleep(0.5)
            with Queue(name, url=AMQP_URL) as other:
                other.get(timeout=5)
                other.task_done()

        helper = threading.Thread(target=make_room)
        helper.start()
        t0 = time.monotonic()
        q.put("c", timeout=10)
        assert 0.4 <= time.monotonic() - t0 < 10
        helper.join(10)
        assert _drain(q) == ["b", "c"]


def test_a_handle_adopts_the_declared_bound_and_a_different_one_is_refused(
    name: str, plain
) -> None:
    with Queue(name, url=AMQP_URL, maxsize=5):
        pass
    with Queue(name, url=AMQP_URL) as q:
        assert q.maxsize == 5
    with pytest.raises(ValueError, match="declared with x-max-length=5.*asked for maxsize 7"):
        Queue(name, url=AMQP_URL, maxsize=7)
    # A queue another program bounded with drop-head would lose messages when full.
    other = f"{name}-drop"
    plain.queue_declare(other, durable=True, arguments={"x-max-length": 3})
    try:
        with pytest.raises(ValueError, match="x-overflow=drop-head.*reject-publish"):
            Queue(other, url=AMQP_URL)
    finally:
        channel = pika.BlockingConnection(pika.URLParameters(AMQP_URL)).channel()
        channel.queue_delete(other)
        channel.connection.close()


def test_a_queue_that_does_not_survive_a_restart_is_refused(name: str, plain) -> None:
    plain.queue_declare(name, durable=False)
    with pytest.raises(ValueError, match="baozi needs a durable queue"):
        Queue(name, url=AMQP_URL)


def test_an_unbounded_handle_adopts_a_bounded_classic_queue(name: str, plain) -> None:
    plain.queue_declare(
        name, durable=True, arguments={"x-max-length": 2, "x-overflow": "reject-publish"}
    )
    with Queue(name, url=AMQP_URL) as q:
        assert q.maxsize == 2
        q.put_many([1, 2])
        with pytest.raises(baozi.Full):
            q.put_nowait(3)


# -- a connection that drops ---------------------------------------------------------------------


class _Proxy:
    """A TCP relay to the broker whose connections the test can cut, as a network would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            cut, self.sockets = self.sockets, []
        for s in cut:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.server.close()
        self.cut()


def test_a_dropped_connection_is_made_again_and_unacked_messages_come_back(name: str) -> None:
    parts = pika.URLParameters(AMQP_URL)
    proxy = _Proxy((parts.host, parts.port))
    try:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F"
        with Queue(name, url=url) as q:
            q.put_many(["a", "b"])
            assert q.get(timeout=5) == "a"
            proxy.cut()
            # The next call connects again; "a", unacked when the connection dropped, was put
            # back by the broker and comes again.
            q.put("c")
            got = _drain(q)
            assert sorted(got) == ["a", "b", "c"]
            q.task_done()  # "a" of the dropped connection: nothing to ack, a warning
            q.task_done(3)
            assert q.qsize() == 0
    finally:
        proxy.close()


def test_an_idle_handle_keeps_its_connection_and_its_unacked_message_past_heartbeats(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # With 2 s heartbeats, RabbitMQ drops a connection that stays silent for about 4 s, and
    # puts its unacked messages back. The handle's keeper answers them while the program works.
    with Queue(name, url=f"{AMQP_URL}?heartbeat=2") as q:
        q.put("long job")
        assert q.get(timeout=5) == "long job"
        time.sleep(7)
        with Queue(name, url=AMQP_URL) as other:
            assert other.qsize() == 0  # not put back: still held
        q.task_done()
    assert "dropped" not in caplog.text and "put back" not in caplog.text
    with Queue(name, url=AMQP_URL) as q:
        assert q.qsize() == 0


def test_a_bounded_quorum_queue_of_another_program_is_adopted_with_its_real_bound(
    name: str, plain
) -> None:
    # RabbitMQ 3.10's quorum queue takes one message past x-max-length: that is its bound.
    plain.queue_declare(
        name,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-max-length": 2, "x-overflow": "reject-publish"},
    )
    with Queue(name, url=AMQP_URL) as q:
        assert q.maxsize == 3
        q.put_many([1, 2, 3])
        with pytest.raises(baozi.Full):
            q.put_nowait(4)
        assert q.qsize() == 3


def test_asyncio_code_puts_and_gets_and_a_cancelled_get_takes_nothing(name: str) -> None:
    import asyncio

    async def main() -> None:
        with Queue(name, url=AMQP_URL) as q:
            await q.put_async({"n": 1})
            assert await q.get_async(timeout=5) == {"n": 1}
            q.task_done()
            t0 = time.monotonic()
            with pytest.raises(baozi.Empty):
                await q.get_async(timeout=0.4)
            assert 0.35 <= time.monotonic() - t0 < 5
            # A get cancelled while it waits: what arrives after is not kept by this handle.
            waiting = asyncio.ensure_future(q.get_async())
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await q.put_async("after the cancel")
            await asyncio.sleep(0.5)  # the cancelled get's thread may have taken it meanwhile
            with Queue(name, url=AMQP_URL) as other:
                assert other.get(timeout=5) == "after the cancel"
                other.task_done()
            with pytest.raises(ValueError, match="called too many times"):
                q.task_done()

    asyncio.run(main())


def _consume_to_file(name: str, path: Path) -> None:  # pragma: no cover -- in a forked child
    code = 1
    try:
        with Queue(name, url=AMQP_URL) as q, path.open("a") as out:
            while True:
                try:
                    item = q.get(timeout=2)
                except baozi.Empty:
                    break
                time.sleep(0.005)  # the work, while the message is unacknowledged
                out.write(f"{item}\n")
                out.flush()  # in the kernel before the ack: a kill after it loses no record
                q.task_done()
        code = 0
    finally:
        os._exit(code)


def test_a_sigkill_storm_of_100_consumers_loses_no_message(name: str, tmp_path: Path) -> None:
    import random

    n, kills = 6000, 100
    with Queue(name, url=AMQP_URL) as q:
        for start in range(0, n, 500):
            q.put_many(range(start, start + 500))

    def spawn(k: int) -> int:
        pid = os.fork()
        if pid == 0:  # pragma: no cover -- the child
            _consume_to_file(name, tmp_path / f"seen-{k}")
        return pid

    rng = random.Random(7)
    live = [spawn(k) for k in range(3)]
    spawned = 3
    killed = 0
    deadline = time.monotonic() + 120
    with Queue(name, url=AMQP_URL) as q:
        while killed < kills and time.monotonic() < deadline and q.qsize() > 0:
            time.sleep(rng.uniform(0.02, 0.1))
            victim = live.pop(rng.randrange(len(live)))
            os.kill(victim, signal.SIGKILL)
            os.waitpid(victim, 0)
            killed += 1
            live.append(spawn(spawned))
            spawned += 1
    for pid in live:  # the survivors drain what is left, then leave
        _, status = os.waitpid(pid, 0)
        assert status == 0
    seen: list[int] = []
    for path in tmp_path.glob("seen-*"):
        seen += [int(line) for line in path.read_text().split()]
    lost = set(range(n)) - set(seen)
    twice = len(seen) - len(set(seen))
    print(f"{killed} kills: {len(set(seen))} of {n} consumed, {twice} twice, {len(lost)} lost")
    assert killed == kills, f"the messages ran out after {killed} kills"
    assert not lost, sorted(lost)[:20]
    assert set(seen) <= set(range(n))
    with Queue(name, url=AMQP_URL) as q:
        assert q.qsize() == 0


def test_get_many_that_waited_takes_the_rest_and_leaves_none_held(name: str) -> None:
    with Queue(name, url=AMQP_URL) as q:
        got: list[list[object]] = []
        waiter = threading.Thread(target=lambda: got.append(q.get_many(3, timeout=10)))
        waiter.start()
        time.sleep(0.3)
        with Queue(name, url=AMQP_URL) as producer:
            producer.put_many([0, 1, 2, 3])
        waiter.join(10)
        # It wakes with the first message; those RabbitMQ had not yet routed to it when it
        # woke (put_many publishes them one after another) are not waited for.
        (taken,) = got
        assert 1 <= len(taken) <= 3 and taken == [0, 1, 2][: len(taken)]
        with Queue(name, url=AMQP_URL) as other:  # the rest is there for anyone: none held
            rest = [other.get(timeout=5) for _ in range(4 - len(taken))]
            assert rest == [0, 1, 2, 3][len(taken) :]
            other.task_done(len(rest))
        q.task_done(len(taken))
        with pytest.raises(ValueError, match="called too many times"):
            q.task_done()


def test_a_waiting_get_outlives_its_queue_being_deleted_and_declared_again(
    name: str, plain
) -> None:
    with Queue(name, url=AMQP_URL) as q:
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(q.get(timeout=15)))
        waiter.start()
        time.sleep(0.3)
        plain.queue_delete(name)  # RabbitMQ cancels the waiting consumer
        time.sleep(0.3)
        with Queue(name, url=AMQP_URL) as producer:
            producer.put("hello")
        waiter.join(15)
        assert got == ["hello"]
        q.task_done()


def test_a_message_that_cannot_be_moved_aside_goes_back_and_is_not_acked(name: str, plain) -> None:
    # The side queue exists as a classic queue: the message goes there as it is.
    plain.queue_declare(f"{name}.undecodable", durable=True)
    plain.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    plain.basic_publish(
        "", name, b"{broken", pika.BasicProperties(delivery_mode=2, content_type="application/json")
    )
    with Queue(name, url=AMQP_URL) as q:
        with pytest.raises(baozi.UndecodableItem):
            q.get(timeout=5)
        assert q.qsize() == 0
        with pytest.raises(ValueError, match="called too many times"):
            q.task_done()
    _, body = _plain_get(plain, f"{name}.undecodable")
    assert body == b"{broken"


def test_names_leave_room_for_the_side_queue_and_lossy_queues_are_refused(name: str, plain) -> None:
    longest = name + "q" * (243 - len(name))  # this test's own, deleted below
    try:
        Queue(longest, url=AMQP_URL).close()
    finally:
        plain.queue_delete(longest)
    with pytest.raises(ValueError, match="at most 243 bytes"):
        Queue(longest + "q", url=AMQP_URL)
    plain.queue_declare(name, durable=True, arguments={"x-message-ttl": 60000})
    with pytest.raises(ValueError, match="x-message-ttl=60000: it expires messages"):
        Queue(name, url=AMQP_URL)
    other = f"{name}-sac"
    plain.queue_declare(other, durable=True, arguments={"x-single-active-consumer": True})
    try:
        with Queue(other, url=AMQP_URL) as q:  # a boolean argument, adopted as it is
            q.put(1)
            assert q.get(timeout=5) == 1
            q.task_done()
    finally:
        plain.queue_delete(other)


def test_the_configured_default_url_may_name_rabbitmq(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAOZI_URL", AMQP_URL)
    with Queue(name) as q:
        assert isinstance(q, AmqpQueue)
        q.put("x")
        assert q.get(timeout=5) == "x"
        q.task_done()


def test_a_wrong_password_is_refused_at_once_naming_what_to_check() -> None:
    _amqp_or_skip()
    parts = pika.URLParameters(AMQP_URL)
    t0 = time.monotonic()
    with pytest.raises(baozi.StoreError, match="refused the login or the vhost") as info:
        Queue("x", url=f"amqp://guest:wrong-secret@{parts.host}:{parts.port}/%2F")
    assert time.monotonic() - t0 < 5  # not retried for connect_timeout
    assert "wrong-secret" not in str(info.value)
