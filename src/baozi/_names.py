"""What a queue's name may be: checked wherever a name comes in, before anything is stored."""

from __future__ import annotations

import unicodedata

BANNED = frozenset(("Cc", "Cf", "Zl", "Zp"))
"""Unicode categories no name may hold: controls (a newline, NEL), format characters (bidi
overrides, zero-width spaces) and line and paragraph separators -- what can make a name look
like another, or break the line it is shown or logged on."""

UNDECODABLE_SUFFIX = ".undecodable"
"""Items a queue handle cannot decode are moved to the queue of this name plus this suffix."""

_ACCEPTED: set[str] = set()  # names checked already: a job's queue is checked on every enqueue


def check_name(name: object, kind: str = "queue", error: type[Exception] = ValueError) -> str:
    """``name`` if it is a fit name; else ``error`` saying what is wrong with it."""
    if not isinstance(name, str) or not name:
        raise error(f"a {kind} name must be a non-empty str, not {name!r}")
    if name in _ACCEPTED:
        return name
    for i, char in enumerate(name):
        if unicodedata.category(char) in BANNED:
            raise error(
                f"a {kind} name cannot hold {unicodedata.name(char, repr(char))} "
                f"(U+{ord(char):04X}, at index {i}) in {name!r}: control, format and line or "
                f"paragraph separator characters are refused"
            )
    if len(_ACCEPTED) < 10_000:
        _ACCEPTED.add(name)
    return name
