"""Names the parts of the conformance suite share."""

from __future__ import annotations

from collections.abc import Sequence

from ...backends.base import Item

__all__ = ["OTHER", "Q", "payloads"]

Q = "contract"
OTHER = "contract-other"


def payloads(items: Sequence[Item]) -> list[bytes]:
    return [i.payload for i in items]
