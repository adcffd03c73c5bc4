"""Chord storm: SIGKILL worker processes over and over while they run a chord, then count what
the callback and the members did.

    python bench/chord_storm.py                         # SQLite, Redis and PostgreSQL: 1,000 members
    python bench/chord_storm.py --store redis --members 5000 --kills 40

Per store, two ``baozi worker -c 8`` processes serve the chord's queue; every ``--interval``
seconds the storm kills one (SIGKILL, its whole process group) and starts another, until it has
killed ``--kills`` or the chord has ended. Every run of a member or of the callback appends a
line to a file first. The store releases the callback in the step that settles the last member,
so it must run exactly once, with every member's result; members a killed worker held run again
(delivery is at-least-once) and are counted as repeats. Exit status 1 when the callback ran
other than once, its result is wrong, or a member never ran.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import killstorm
import killstorm_app

import baozi

BENCH = Path(__file__).resolve().parent


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "baozi", "worker", "killstorm_app:app", "-q", "-c", "8"]
    return subprocess.Popen(
        [*command, "-Q", "chord"],
        cwd=BENCH,
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run(store: str, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="chordstorm-") as name:
        tmp = Path(name)
        url, runlog = killstorm._store_url(store, tmp, args), tmp / "runs.txt"
        env = {
            **os.environ,
            "KILLSTORM_URL": url,
            "KILLSTORM_LEASE": str(args.lease),
            "KILLSTORM_LOG": str(runlog),
            "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")]),
        }
        app = baozi.App(url, lease=args.lease)
        member = app.task(name="chord.member", queue="chord")(killstorm_app.member)
        gather = app.task(name="chord.gather", queue="chord")(killstorm_app.gather)
        try:
            started = time.monotonic()
            members = baozi.group(member.s(n, args.work) for n in range(args.members))
            flow = baozi.chord(members, gather.s()).delay()
            workers = [_worker(env), _worker(env)]
            kills = 0
            try:
                while flow.status not in ("succeeded", "failed", "cancelled"):
                    if time.monotonic() - started > args.time_limit:
                        break
                    time.sleep(args.interval)
                    if kills < args.kills:
                        victim = workers.pop(0)
                        os.killpg(victim.pid, signal.SIGKILL)
                        victim.wait(30)
                        kills += 1
                        workers.append(_worker(env))
            finally:
                for w in workers:
                    if w.poll() is None:
                        os.killpg(w.pid, signal.SIGKILL)
                    w.wait(30)
            seconds = time.monotonic() - started
            status = flow.status
            result = flow.result(0) if status == "succeeded" else None
            runs = collections.Counter(
                int(line.split()[0]) for line in runlog.read_text().split("\n") if line
            )
        finally:
            app.store.close()
            if store == "redis":
                killstorm._drop_redis(url)
            elif store == "postgres":
                killstorm._drop_postgres(url)
    ran = [n for n in range(args.members) if runs[n]]
    return {
        "store": store,
        "members": args.members,
        "kills": kills,
        "status": status,
        "callback runs": runs[-1],
        "result ok": result == sum(n * n for n in range(args.members)),
        "members never run": args.members - len(ran),
        "member runs": sum(runs[n] for n in range(args.members)),
        "members run again": sum(runs[n] > 1 for n in range(args.members)),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=sorted(killstorm.STORES), default="all")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between kills")
    parser.add_argument("--work", type=float, default=0.005, help="seconds each member works")
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--redis", default=killstorm.REDIS)
    parser.add_argument("--postgres", default=killstorm.POSTGRES)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--schema", default="")
    parser.add_argument(
        "--out", default=str(BENCH / "results"), help="folder for the report ('' : none)"
    )
    args = parser.parse_args(argv)
    rows = [run(store, args) for store in killstorm.STORES[args.store]]
    columns = list(rows[0])
    lines = [
        f"# Chord storm, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"baozi {baozi.__version__}. {args.members} members of {args.work * 1000:g} ms, "
        f"lease {args.lease:g} s, a SIGKILL every {args.interval:g} s (at most {args.kills}).",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        path = Path(args.out) / f"chordstorm-{time.strftime('%Y%m%d-%H%M')}.md"
        path.write_text(report)
        print(f"written to {path}")
    bad = [
        r for r in rows if r["callback runs"] != 1 or not r["result ok"] or r["members never run"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
