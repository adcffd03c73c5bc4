"""``baozi monitor``: check many URLs at once, with a progress bar and a table of results."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ..monitor._local import CLIENTS, choose
from .options import FAILED, OK, url_option


def _read_urls(path: str) -> list[str]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    urls = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(line)
    return urls


@contextmanager
def _progress_bar(total: int, quiet: bool) -> Iterator[Callable[[object], None]]:
    """A function to call once per URL checked, drawing a bar on stderr (none with ``quiet``:
    then rich is not even imported)."""
    if quiet:
        yield lambda _: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        bar = progress.add_task("urls", total=total)
        yield lambda _: progress.advance(bar)


@click.command()
@click.argument("urls_file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--expect", default=200, show_default=True, help="The status every URL must answer.")
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds each check may take.",
)
@click.option(
    "-c",
    "--concurrency",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Checks in flight at once, in all (in-process).",
)
@click.option(
    "-p",
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes to split the URLs over (in-process), each with its own event loop and its "
    "share of -c.",
)
@click.option(
    "--client",
    default="auto",
    show_default=True,
    type=click.Choice(CLIENTS),
    help="The in-process checks' HTTP client: gevent (geventhttpclient on greenlets, the lighter) "
    "or aiohttp (coroutines); auto is gevent where it is installed.",
)
@click.option(
    "--via-queue",
    is_flag=True,
    help="Enqueue one job per URL and wait for workers (`baozi worker baozi.monitor:app`).",
)
@click.option(
    "--wait",
    default=None,
    type=click.FloatRange(min=0),
    help="With --via-queue: seconds to wait for the workers before counting a URL failed.",
)
@click.option(
    "--json", "json_out", default=None, help="Also write the results as JSON (- for stdout)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no table.")
@url_option
def monitor(
    urls_file: str,
    expect: int,
    timeout: float,
    concurrency: int,
    processes: int,
    client: str,
    via_queue: bool,
    wait: float | None,
    json_out: str | None,
    quiet: bool,
    url: str | None,
) -> None:
    """Check every URL in URLS_FILE (one per line, # for comments); exit 1 if any failed."""
    from ..monitor import Split, check_local, check_via_queue

    if via_queue and processes > 1:
        raise click.UsageError("-p splits in-process checks; with --via-queue the workers choose")
    urls = _read_urls(urls_file)
    chosen = choose(client)
    from .._gc import tune as tune_gc

    tune_gc()  # a thousand checks in flight: as in a server (see baozi._gc); forked children too
    # Started before the progress bar's thread (and before rich is imported): they are forked.
    split = Split(urls, expect, timeout, concurrency, processes, chosen) if processes > 1 else None
    with _progress_bar(len(urls), quiet) as done:
        if via_queue:
            from ..app import App

            results = check_via_queue(App(url), urls, expect, timeout, done, wait)
        elif split is not None:
            results = split.results(done)
        else:
            results = check_local(urls, expect, timeout, concurrency, lambda _i, c: done(c), chosen)

    failed = [r for r in results if not r.ok]
    if not quiet:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(show_edge=False, pad_edge=False)
        table.add_column("URL", overflow="fold")
        table.add_column("status", justify="right")
        table.add_column("time", justify="right")
        table.add_column("result")
        for r in results:
            table.add_row(
                escape(r.url),  # a URL or a reason may hold [brackets]: text, not markup
                "-" if r.status is None else str(r.status),
                f"{r.seconds * 1000:.0f} ms",
                "ok" if r.ok else f"[red]FAILED[/red] {escape(r.reason)}",
            )
        out = Console(stderr=json_out == "-")  # stdout carries only the JSON then
        out.print(table)
        out.print(f"{len(results) - len(failed)} ok, {len(failed)} failed, of {len(results)}")
    if json_out is not None:
        text = json.dumps([r.as_dict() for r in results], indent=2)
        if json_out == "-":
            click.echo(text)
        else:
            Path(json_out).write_text(text + "\n")
    sys.exit(FAILED if failed else OK)
