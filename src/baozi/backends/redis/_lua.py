"""Putting a script together: the body after the prelude's definitions that it uses.

Redis runs a script's whole text on every call, so each function the prelude defines costs a
closure per call whether the script uses it or not; a script carries only what it reaches.
"""

from __future__ import annotations

import re

_DEFINES = re.compile(r"^local (?:function (\w+)|([\w, ]+?) =)")
_WORD = re.compile(r"[A-Za-z_]\w*")
_NOT_CODE = re.compile(r"--[^\n]*|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
"""Comments and string literals, whose words name nothing."""


def _names(text: str) -> set[str]:
    return set(_WORD.findall(_NOT_CODE.sub(" ", text)))


def _chunks(prelude: str) -> list[tuple[set[str], str]]:
    """The prelude's top-level definitions, each with the comment lines above it, in order: the
    names each defines and its text."""
    chunks: list[tuple[set[str], str]] = []
    lead: list[str] = []  # comments and blank lines, which belong to the next definition
    for line in prelude.splitlines(keepends=True):
        found = _DEFINES.match(line)
        if found:
            names = found.group(1) or found.group(2)
            chunks.append(({n.strip() for n in names.split(",")}, "".join(lead) + line))
            lead = []
        elif chunks and (line[:1] in (" ", "\t") or line.startswith("end")):
            names, text = chunks[-1]
            chunks[-1] = (names, text + "".join(lead) + line)
            lead = []
        else:
            lead.append(line)
    return chunks


def assemble(prelude: str, body: str) -> str:
    """``body`` after the prelude's definitions it uses, directly or through one another."""
    chunks = _chunks(prelude)
    wanted = _names(body)
    keep = [False] * len(chunks)
    grew = True
    while grew:
        grew = False
        for i, (names, text) in enumerate(chunks):
            if not keep[i] and names & wanted:
                keep[i] = grew = True
                wanted |= _names(text)
    return "".join(text for kept, (_, text) in zip(keep, chunks, strict=True) if kept) + body
