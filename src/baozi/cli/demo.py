"""``baozi demo``: the chef and the customers, on a bounded durable queue."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import click
from rich.console import Console
from rich.table import Table

from .._time import iso
from ..deques import Deque
from ..errors import Empty, Full
from ..queues import Queue
from .options import url_option

QUEUE = "demo:buns"
RUNS = "demo:runs"
COLORS = {"chef": "yellow", "alice": "cyan", "bob": "magenta"}


class _PutBack(Exception):
    """Raised inside ``reserve()`` when time is up mid-bun: the bun goes back on the counter."""


def _say(console: Console, who: str, text: str) -> None:
    console.print(f"[{iso(time.time())}] [bold {COLORS[who]}]{who:>5}[/] {text}")


def _chef(
    q: Queue,
    run: int,
    buns: int,
    make: float,
    stop: threading.Event,
    console: Console,
    made: list[str],
) -> None:
    for i in range(1, buns + 1):
        if stop.wait(make):
            return
        bun = f"bun {run}.{i}"
        while not stop.is_set():
            try:
                q.put(bun, timeout=0.1)
            except Full:
                continue  # the counter is full: wait for a customer
            made.append(bun)
            _say(console, "chef", f"made [green]{bun}[/]   (counter: {q.qsize()}/{q.maxsize})")
            break


def _customer(
    name: str,
    q: Queue,
    run: int,
    eat: float,
    stop: threading.Event,
    console: Console,
    eaten: dict[str, list[str]],
) -> None:
    while not stop.is_set():
        try:
            with q.reserve(timeout=0.1) as bun:
                if stop.wait(eat):
                    _say(console, name, f"put [green]{bun}[/] back, unfinished: time is up")
                    raise _PutBack
                eaten[name].append(bun)
                old = (
                    ""
                    if bun.startswith(f"bun {run}.")
                    else "  [dim](left over from an earlier run)[/]"
                )
                _say(console, name, f"ate  [green]{bun}[/]{old}")
        except Empty:
            continue
        except _PutBack:
            return


@click.command()
@url_option
@click.option("--buns", default=12, show_default=True, help="Buns the chef makes this run.")
@click.option("--seconds", default=3.0, show_default=True, help="How long the shop stays open.")
@click.option("--reset", is_flag=True, help="Throw away buns left from earlier runs first.")
def demo(url: str | None, buns: int, seconds: float, reset: bool) -> None:
    """One chef makes buns, two customers eat them, on a bounded durable queue.

    The shop closes after a few seconds, whatever is left: buns on the counter and buns half eaten
    stay in the store, and the next run's customers eat them first.
    """
    console = Console(highlight=False)
    q = Queue(QUEUE, maxsize=4, url=url, lease=10.0)
    runs = Deque(RUNS, url=url)
    if reset:
        q.clear()
        runs.clear()
    run = (runs[-1] + 1) if len(runs) else 1
    runs.append(run)
    left = q.qsize()
    console.print(f"[bold]Run {run}[/] on {q.url}: the counter holds {q.maxsize} buns at most.")
    if left:
        console.print(
            f"{left} bun(s) were left from an earlier run; the customers eat those first."
        )

    stop = threading.Event()
    made: list[str] = []
    eaten: dict[str, list[str]] = defaultdict(list)
    threads = [threading.Thread(target=_chef, args=(q, run, buns, 0.12, stop, console, made))]
    threads += [
        threading.Thread(target=_customer, args=(name, q, run, 0.7, stop, console, eaten))
        for name in ("alice", "bob")
    ]
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()

    table = Table(title=f"Run {run}: who made and who ate what")
    table.add_column("who")
    table.add_column("buns")
    table.add_row("chef made", ", ".join(made) or "-")
    for name in ("alice", "bob"):
        table.add_row(f"{name} ate", ", ".join(eaten[name]) or "-")
    console.print(table)
    waiting = q.qsize()
    if waiting:
        console.print(
            f"Shop closed with [bold]{waiting}[/] bun(s) still waiting in {q.url}. "
            f"Run [bold]baozi demo[/] again: they are eaten first."
        )
    else:
        console.print("Shop closed with every bun eaten.")
    q.close()
    runs.close()
