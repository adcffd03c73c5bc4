#!/usr/bin/env python
"""The RabbitMQ queue beside plain AMQP clients on the same broker, with equal guarantees: every
put is a persistent message the broker confirmed before the call returns, and every get is
acknowledged one by one.

  * baozi: ``baozi.Queue(name, url="amqp://...")``: put; get + task_done;
  * pika, the tutorial's way: a channel in confirm mode, ``basic_publish(delivery_mode=2)``; a
    consumer with ``basic_qos(prefetch_count=1)`` acking each message (the tutorial's worker),
    and ``basic_get`` + ``basic_ack`` (one message per call, as a ``get()`` is);
  * kombu's ``SimpleQueue`` (Celery's messaging library) with ``confirm_publish``: put; get + ack.

Each round runs every system on a fresh queue of its own; the table gives the median items/s
over the rounds and baozi's ratio to each. Results go under bench/results/.

    python bench/amqp_queue_bench.py [--n 2000] [--rounds 3] [--url amqp://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ITEM = {"order": 7, "items": ["bun", "tea"]}


def _pika_channel(url: str):  # type: ignore[no-untyped-def]
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _put_then_take(
    put: Callable[[], object], take: Callable[[], object], n: int
) -> tuple[float, float]:
    """Seconds for ``n`` puts, then for ``n`` takes (each get with its acknowledgement)."""
    t0 = time.perf_counter()
    for _ in range(n):
        put()
    t1 = time.perf_counter()
    for _ in range(n):
        take()
    return t1 - t0, time.perf_counter() - t1


def run_baozi(url: str, name: str, n: int) -> tuple[float, float]:
    import baozi

    with baozi.Queue(name, url=url) as q:

        def take() -> None:
            q.get(timeout=10)
            q.task_done()

        return _put_then_take(lambda: q.put(ITEM), take, n)


def _pika_put(url: str, name: str, n: int) -> float:
    import json

    import pika

    connection, channel = _pika_channel(url)
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    body = json.dumps(ITEM).encode()
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    t0 = time.perf_counter()
    for _ in range(n):
        channel.basic_publish("", name, body, props)
    elapsed = time.perf_counter() - t0
    connection.close()
    return elapsed


def run_pika_consumer(url: str, name: str, n: int) -> tuple[float, float]:
    import json

    put = _pika_put(url, name, n)
    connection, channel = _pika_channel(url)
    channel.basic_qos(prefetch_count=1)
    seen = 0

    def callback(ch, method, properties, body):  # type: ignore[no-untyped-def]
        nonlocal seen
        json.loads(body)
        ch.basic_ack(delivery_tag=method.delivery_tag)
        seen += 1
        if seen == n:
            ch.stop_consuming()

    t0 = time.perf_counter()
    channel.basic_consume(name, callback)
    channel.start_consuming()
    get = time.perf_counter() - t0
    connection.close()
    return put, get


def run_pika_basic_get(url: str, name: str, n: int) -> tuple[float, float]:
    import json

    put = _pika_put(url, name, n)
    connection, channel = _pika_channel(url)
    t0 = time.perf_counter()
    for _ in range(n):
        method, _props, body = channel.basic_get(name)
        json.loads(body)
        channel.basic_ack(method.delivery_tag)
    get = time.perf_counter() - t0
    connection.close()
    return put, get


def run_kombu(url: str, name: str, n: int) -> tuple[float, float]:
    from kombu import Connection

    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        q = conn.SimpleQueue(name, queue_opts={"durable": True}, serializer="json")
        try:
            return _put_then_take(
                lambda: q.put(ITEM), lambda: q.get(block=True, timeout=10).ack(), n
            )
        finally:
            q.close()


SYSTEMS: dict[str, Callable[[str, str, int], tuple[float, float]]] = {
    "baozi Queue": run_baozi,
    "pika, tutorial consumer (prefetch 1)": run_pika_consumer,
    "pika, basic_get + basic_ack": run_pika_basic_get,
    "kombu SimpleQueue (confirm_publish)": run_kombu,
}


def _delete(url: str, name: str) -> None:
    connection, channel = _pika_channel(url)
    channel.queue_delete(name)
    connection.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rates: dict[str, list[tuple[float, float]]] = {s: [] for s in SYSTEMS}
    for r in range(args.rounds):
        print(f"round {r + 1}", flush=True)
        for label, run in SYSTEMS.items():
            name = f"bench-{uuid.uuid4().hex[:10]}"
            try:
                put, get = run(args.url, name, args.n)
            finally:
                _delete(args.url, name)
            rates[label].append((args.n / put, args.n / get))
            print(f"  {label:40} put {args.n / put:8,.0f}/s  get+ack {args.n / get:8,.0f}/s")

    def med(label: str, i: int) -> float:
        return statistics.median(x[i] for x in rates[label])

    ours = "baozi Queue"
    lines = [
        "| system | put/s (confirmed) | get + ack /s | baozi ÷ it, put | baozi ÷ it, get |",
        "|---|---|---|---|---|",
    ]
    for label in SYSTEMS:
        lines.append(
            f"| {label} | {med(label, 0):,.0f} | {med(label, 1):,.0f} | "
            f"{med(ours, 0) / med(label, 0):.2f}x | {med(ours, 1) / med(label, 1):.2f}x |"
        )
    import pika

    try:
        import kombu

        kombu_version = kombu.__version__
    except ImportError:
        kombu_version = "absent"
    now = dt.datetime.now(dt.UTC)
    head = (
        f"# The RabbitMQ queue beside plain AMQP clients\n\nRun {now:%Y-%m-%d %H:%M} UTC, "
        f"{args.rounds} round(s) of {args.n:,} items each. Machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; pika {pika.__version__}, kombu {kombu_version}; "
        f"RabbitMQ at {args.url.split('@')[-1]} (quorum queues; kombu declares a classic "
        f"one). 1-minute load average at the end: {os.getloadavg()[0]:.1f}.\n\n"
        "Every put returns after the broker's publisher confirm of a persistent message; every "
        "get is acknowledged one by one. kombu's SimpleQueue consumes with no prefetch limit: "
        "its gets pop messages the broker pushed ahead, which no other consumer can then have; "
        "baozi's get takes one message per call (basic.get), as the pika basic_get row does. "
        "Cells: the median over the rounds.\n\n"
    )
    report = head + "\n".join(lines) + "\n"
    print(report)
    out = args.out or HERE / "results" / f"amqp-queue-{now:%Y%m%d-%H%M}.md"
    out.write_text(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
