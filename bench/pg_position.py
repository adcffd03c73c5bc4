#!/usr/bin/env python
"""position() on the PostgreSQL store at depth: how fast, and whether it is exact.

On the server at BENCH_PG_DSN (default postgresql://root@127.0.0.1:5432/test), in a schema of
its own (``pgh_position_<pid>``, dropped afterwards):

1. fills two queues with --n jobs each (``store.enqueue`` in calls of --batch): ``flat``, every
   job at priority 0 (first in, first out), and ``mixed``, each job at a random one of a few
   priorities (int and float), then --front jobs pushed to the front;
2. times ``store.rank(queue, id)`` (``Job.position()``: one round trip, client included) for
   items at the head, in the middle and at the tail of ``flat``, and at the head, middle and
   tail of each priority of ``mixed`` -- median and p99 of --reps calls after a warm-up --
   beside a plain ``count(*)`` of the items ahead (the same order, the predicate split as
   ``priority < p OR (priority = p AND ...)``, median of --count-reps);
3. checks exactness under concurrent writes: while one process pushes (single enqueues at
   random priorities, and front pushes) and two reserve, settle and release (back in place),
   --check random items of ``mixed`` are ranked by the store's own SQL and counted by brute
   force in one statement, so in one snapshot: the two must be equal (or both say "not in line"
   for an item a worker took); ``store.rank()`` is timed under that load too. Then, with the
   load stopped, ``store.rank()`` itself is compared with a separate brute-force count.

It writes bench/results/pg-position-YYYYMMDD-HHMM.md (--out DIR elsewhere).

    python bench/pg_position.py                      # 1,000,000 per queue: a minute or two
    python bench/pg_position.py --n 50000 --check 50 --out /tmp   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pg_env

from baozi.backends import open_store
from baozi.backends.base import NewJob, Outcome
from baozi.backends.postgres._statements import RANK

MIXED = [0, 1, 2, 2.5, 5]
PAYLOAD = b'[["x"], {}]'

# The ready items of queue %(qid)s ahead of item %(id)s, by brute force (the same order).
_TRUE = """
(SELECT count(*) FROM {s}.items i WHERE i.qid = %(qid)s
    AND (i.state = 0 OR i.due <= {s}.now())
    AND (i.priority < x.priority OR (i.priority = x.priority AND (i.seq < x.seq
         OR (i.seq = x.seq AND i.id < x.id)))))
"""
_COUNT = f"SELECT {_TRUE} FROM {{s}}.items x WHERE x.id = %(id)s"
# One statement, so one snapshot: the store's rank and the brute-force count side by side.
_BOTH = f"""
SELECT r.state, r.due_now, r.ahead, (SELECT {_TRUE} FROM {{s}}.items x WHERE x.id = %(id)s)
FROM ({RANK.strip()}) AS r(state, due_now, ahead)
"""


def fill(store: Any, queue: str, n: int, batch: int, prios: list[Any], seed: int) -> list[str]:
    rng = random.Random(seed)
    ids: list[str] = []
    while len(ids) < n:
        k = min(batch, n - len(ids))
        ids += store.enqueue(
            queue, [NewJob("bench.t", PAYLOAD, rng.choice(prios)) for _ in range(k)]
        )
    return ids


def timed(fn: Any, reps: int, warm: int = 3) -> list[float]:
    for _ in range(warm):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def picks_flat(ids: list[str]) -> list[tuple[str, str]]:
    n = len(ids)
    where = [
        ("head", 0),
        ("10th", 9),
        ("1,000th", 999),
        ("quarter", n // 4),
        ("middle", n // 2),
        ("three quarters", 3 * n // 4),
        ("tail", n - 1),
    ]
    return [(label, ids[i]) for label, i in where]


def picks_mixed(store: Any, queue: str) -> list[tuple[str, str]]:
    """The first, middle and last ready item of each priority of the queue, in queue order."""
    out = []
    qid = store._rqid(queue)
    rows = store._rows(
        "pick",
        "SELECT priority, pfloat, count(*) FROM {s}.items WHERE qid = %s AND state = 0 "
        "GROUP BY 1, 2 ORDER BY 1",
        (qid,),
    )
    for prio, was_float, count in rows:
        shown = float(prio) if was_float else int(prio)
        for label, offset in (("first", 0), ("middle", count // 2), ("last", count - 1)):
            (item,) = store._one(
                "pick",
                "SELECT id FROM {s}.items WHERE qid = %s AND state = 0 AND priority = %s "
                "ORDER BY priority, seq, id OFFSET %s LIMIT 1",
                (qid, Decimal(prio), offset),
            )
            out.append((f"priority {shown}, {label} of {count:,}", str(item)))
    return out


def true_count(store: Any, queue: str, item: str) -> int:
    row = store._one("count", _COUNT, {"id": int(item), "qid": store._rqid(queue)})
    return int(row[0])


# -- the concurrent load --------------------------------------------------------------------


def pusher(url: str, queue: str, stop: Any, counts: Any, seed: int) -> None:
    store = open_store(url)
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        if rng.random() < 0.05:
            store.enqueue(queue, [NewJob("bench.t", PAYLOAD, rng.choice(MIXED))] * 5, front=True)
            n += 5
        else:
            store.enqueue_one(queue, "bench.t", PAYLOAD, rng.choice(MIXED))
            n += 1
    counts["pushed"] += n
    store.close()


def worker(url: str, queue: str, stop: Any, counts: Any, seed: int) -> None:
    store = open_store(url)
    rng = random.Random(seed)
    owner = f"w{seed}"
    done = back = 0
    while not stop.is_set():
        items = store.reserve(queue, owner, 30.0, n=20)
        rng.shuffle(items)
        keep, put_back = items[:16], items[16:]
        done += store.settle(queue, owner, [Outcome(i.id, "succeeded", b"1") for i in keep], 60.0)
        back += store.release(queue, [i.id for i in put_back], owner)
    counts["settled"] += done
    counts["released"] += back
    store.close()


def check_under_load(url: str, store: Any, queue: str, ids: list[str], k: int, seed: int) -> dict:
    rng = random.Random(seed)
    mgr = mp.Manager()
    counts = mgr.dict(pushed=0, settled=0, released=0)
    stop = mgr.Event()
    procs = [mp.Process(target=pusher, args=(url, queue, stop, counts, seed))]
    procs += [mp.Process(target=worker, args=(url, queue, stop, counts, seed + i)) for i in (1, 2)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # the load is under way
    qid = store._rqid(queue)
    sql = store.sql(_BOTH)
    checked = equal = not_ready = 0
    wrong: list[tuple[str, Any, int]] = []
    rank_ms: list[float] = []
    t0 = time.monotonic()
    for item in rng.sample(ids, k):
        row = store._db.run(
            "check", lambda c, i=item: c.execute(sql, {"id": int(i), "qid": qid}).fetchone()
        )
        t = time.perf_counter()
        store.rank(queue, rng.choice(ids))
        rank_ms.append((time.perf_counter() - t) * 1000)
        checked += 1
        if row is None:  # finished meanwhile: no longer an item
            not_ready += 1
            continue
        state, due_now, ahead, true = row
        if state != 0 and not due_now:
            not_ready += 1
        elif int(ahead) == int(true):
            equal += 1
        else:
            wrong.append((item, ahead, true))
    seconds = time.monotonic() - t0
    stop.set()
    for p in procs:
        p.join(30)
    result = {
        "checked": checked,
        "equal": equal,
        "not_ready": not_ready,
        "wrong": wrong,
        "seconds": seconds,
        "rank_ms": rank_ms,
        **dict(counts),
    }
    mgr.shutdown()
    return result


def quiet_check(store: Any, queue: str, ids: list[str], k: int, seed: int) -> tuple[int, int, list]:
    rng = random.Random(seed)
    equal = absent = 0
    wrong = []
    for item in rng.sample(ids, k):
        got = store.rank(queue, item)
        if got is None:
            absent += 1
            continue
        want = true_count(store, queue, item)
        if got == want:
            equal += 1
        else:
            wrong.append((item, got, want))
    return equal, absent, wrong


# -- the report -----------------------------------------------------------------------------


def fmt_ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000, help="jobs per queue")
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--front", type=int, default=1_000)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--count-reps", type=int, default=3)
    ap.add_argument("--check", type=int, default=200)
    ap.add_argument("--quiet-check", type=int, default=50)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--out", type=Path, default=pg_env.HERE / "results")
    args = ap.parse_args()
    started = dt.datetime.now()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    with pg_env.schema("position") as schema:
        url = pg_env.url(schema)
        store = open_store(url)
        t = time.perf_counter()
        flat = fill(store, "flat", args.n, args.batch, [0], args.seed)
        fill_flat = time.perf_counter() - t
        t = time.perf_counter()
        mixed = fill(store, "mixed", args.n, args.batch, MIXED, args.seed)
        mixed += store.enqueue("mixed", [NewJob("bench.t", PAYLOAD, 1)] * args.front, front=True)
        fill_mixed = time.perf_counter() - t
        print(f"filled in {fill_flat:.1f} s and {fill_mixed:.1f} s", flush=True)

        rows = []
        for queue, picks in (("flat", picks_flat(flat)), ("mixed", picks_mixed(store, "mixed"))):
            for label, item in picks:
                depth = store.rank(queue, item)
                want = true_count(store, queue, item)
                ms = timed(lambda q=queue, i=item: store.rank(q, i), args.reps)
                counted = timed(lambda q=queue, i=item: true_count(store, q, i), args.count_reps, 1)
                row = (
                    queue,
                    label,
                    depth,
                    want,
                    pg_env.median(ms),
                    pg_env.pct(ms, 99),
                    max(ms),
                    pg_env.median(counted),
                )
                rows.append(row)
                print(row, flush=True)

        load = check_under_load(url, store, "mixed", mixed, args.check, args.seed)
        print({k: v for k, v in load.items() if k != "rank_ms"}, flush=True)
        quiet = quiet_check(store, "mixed", mixed, args.quiet_check, args.seed + 7)
        sizes = store._rows(
            "sizes",
            "SELECT (SELECT count(*) FROM {s}.ready), "
            "pg_size_pretty(pg_total_relation_size('{s}.items')), "
            "pg_size_pretty(pg_total_relation_size('{s}.ready'))",
        )[0]
        store.close()

    say(f"# position() on PostgreSQL at depth, {started:%Y-%m-%d %H:%M}")
    say()
    say(pg_env.machine())
    say()
    say(f"Command: `{' '.join(['python', f'bench/{Path(__file__).name}', *sys.argv[1:]])}`")
    say()
    say(
        f"Two queues of {args.n:,} jobs each in one schema: `flat` (all priority 0) filled in "
        f"{fill_flat:.1f} s ({args.n / fill_flat:,.0f} jobs/s, `store.enqueue` in calls of "
        f"{args.batch:,}); `mixed` (priorities {', '.join(map(str, MIXED))}, at random, then "
        f"{args.front:,} front pushes at priority 1) in {fill_mixed:.1f} s. Then {sizes[0]:,} rows "
        f"of bucketed ready counts (`ready`, {sizes[2]}) beside {2 * args.n + args.front:,} items "
        f"(`items`, {sizes[1]}). No ANALYZE or VACUUM was run on the tables (autovacuum as "
        "above)."
    )
    say()
    say(
        f"`store.rank()` is `Job.position()`: one round trip from this process, {args.reps} calls "
        "per item after 3 warm-up calls. `count(*)` is the same question answered by counting, "
        "in one statement, the queue's items ahead that are ready (or leased or scheduled and "
        "due): `priority < p OR (priority = p AND (seq < s OR (seq = s AND id < x)))`; the server "
        f"reads the queue's rows to count them. Median of {args.count_reps} after one warm-up. "
        '"true" is that count: the place must equal it.'
    )
    say()
    say(
        "| queue | item | place | true | exact | rank p50 ms | p99 ms | max ms | count(*) p50 ms | count ÷ rank |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|")
    for queue, label, depth, want, p50, p99, top, counted in rows:
        say(
            f"| {queue} | {label} | {depth:,} | {want:,} | {'yes' if depth == want else '**no**'} "
            f"| {fmt_ms(p50)} | {fmt_ms(p99)} | {fmt_ms(top)} | {fmt_ms(counted)} "
            f"| {counted / p50:,.0f}x |"
        )
    worst = max(r[5] for r in rows)
    deep = [r for r in rows if r[2] is not None and r[2] >= 0.9 * args.n]
    say()
    say(
        f"Slowest p99 over every item: {fmt_ms(worst)} ms (target: < 10 ms at 1,000,000 queued). "
        + (
            f"Items with {0.9 * args.n:,.0f} or more ahead: rank p50 "
            f"{fmt_ms(max(r[4] for r in deep))} ms at most, count(*) "
            f"{fmt_ms(min(r[7] for r in deep))} ms at least."
            if deep
            else ""
        )
    )
    say()
    ms = load["rank_ms"]
    say("## Exact under concurrent pushes, reserves, settles and releases")
    say()
    say(
        f"While 1 process pushed (single `enqueue_one` at random priorities; 5% front pushes of 5) "
        f"and 2 reserved 20 at a time, settled 16 as succeeded and released 4 back in place, "
        f"{load['checked']} random items of `mixed` were checked over {load['seconds']:.1f} s: "
        f"the store's rank query and a brute-force count in one statement (one snapshot). "
        f"The load meanwhile: {load['pushed']:,} jobs pushed, {load['settled']:,} settled, "
        f"{load['released']:,} released."
    )
    say()
    say(
        f"- equal: **{load['equal']}**; not in line at that moment (taken by a worker, or "
        f"finished): {load['not_ready']}; different: **{len(load['wrong'])}**"
        + (f" ({load['wrong'][:5]})" if load["wrong"] else "")
    )
    say(
        f"- `store.rank()` of a random item of `mixed` under that load: p50 "
        f"{fmt_ms(pg_env.median(ms))} ms, p99 {fmt_ms(pg_env.pct(ms, 99))} ms, max "
        f"{fmt_ms(max(ms))} ms ({len(ms)} calls)."
    )
    equal, absent, wrong = quiet
    say(
        f"- Load stopped: `store.rank()` itself against a separate brute-force count for "
        f"{args.quiet_check} random items: {equal} equal, {absent} no longer in line, "
        f"{len(wrong)} different" + (f" ({wrong[:5]})" if wrong else "") + "."
    )
    say()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"pg-position-{started:%Y%m%d-%H%M}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
