"""Junk in a Redis store: reading the scripts' reports of what they moved aside, and the server
settings that lose data (an eviction policy other than ``noeviction``)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("baozi.redis")

MARK = b"\x00baozi:junk\x00"
"""The first value of a script's reply that reports moves to quarantine (see the prelude)."""

EVICTION_SAFE = (b"noeviction", "noeviction")


def _printable(raw: bytes) -> str:
    """Text from the store for a log line: what is not printable is escaped, so that a crafted
    name cannot forge a line of its own."""
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def unwrap(reply: Any, where: str) -> Any:
    """A script's own reply; each move to quarantine that it reports is logged here, once, at
    ERROR, naming the key."""
    if type(reply) is not list or not reply or reply[0] != MARK:
        return reply
    n = int(reply[1])
    notes = reply[2 : 2 + 3 * n]
    for i in range(0, len(notes), 3):
        key, aside, reason = (_printable(x) for x in notes[i : i + 3])
        log.error(
            "Redis at %s: %s could not be read (%s); it was moved, intact, to %s",
            where,
            key,
            reason,
            aside,
        )
    rest = reply[2 + 3 * n :]
    return rest[0] if rest else None


def eviction_warning(policy: Any, where: str) -> str | None:
    """What to tell the user about the server's ``maxmemory-policy``, or None when it is safe."""
    if policy is None or policy in EVICTION_SAFE:
        return None
    text = policy.decode(errors="replace") if isinstance(policy, bytes) else str(policy)
    return (
        f"Redis at {where} has maxmemory-policy {text}: under memory pressure it deletes keys, "
        f"and with them queued jobs. Set maxmemory-policy noeviction (CONFIG SET "
        f"maxmemory-policy noeviction, and in redis.conf) so that a full server refuses writes "
        f"instead"
    )


def read_policy(client: Any) -> Any:
    """The server's ``maxmemory-policy``, or None when it will not say (a managed server may
    refuse CONFIG)."""
    try:
        reply = client.config_get("maxmemory-policy")
    except Exception:  # noqa: BLE001 -- not allowed to ask: nothing to warn about
        return None
    if isinstance(reply, dict):
        return reply.get("maxmemory-policy", reply.get(b"maxmemory-policy"))
    return None
