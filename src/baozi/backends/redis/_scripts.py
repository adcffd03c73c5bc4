"""The Lua scripts, read from ``lua/`` and put together with the prelude's definitions each uses."""

from __future__ import annotations

import hashlib
from importlib import resources

from ._lua import assemble

SCRIPTS = (
    "kv",
    "slots",
    "rate",
    "discard",
    "add",
    "across",
    "reserve",
    "claim",
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
    "forget",
    "pending",
    "workers",
    "push",
    "junk",
    "queue",
    "deque",
)

INGESTING = frozenset(
    ("add", "reserve", "claim", "pop", "rank", "items", "counts", "jobs", "cancel", "requeue")
    + ("clear", "discard", "queue", "deque", "pending", "across")
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


def load_scripts() -> tuple[dict[str, str], dict[str, str]]:
    """Every script's text and its SHA-1 digest (what EVALSHA names it by), by name."""
    lua = resources.files(__package__).joinpath("lua")
    prelude = "".join(lua.joinpath(f).read_text() for f in ("_prelude.lua", "_prelude_flows.lua"))
    sources = {name: _load(name, prelude) for name in SCRIPTS}
    shas = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in sources.items()}
    return sources, shas
