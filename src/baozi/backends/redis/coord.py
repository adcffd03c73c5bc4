"""The coordination part of the Redis store: keys and values, slots, rate limits.

Each step is one Lua script (or one plain command), so a read and the write that depends on it are
atomic however many clients race.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import StoreError
from .._coord import kind_range, with_tail
from ..base import CLAIM_TTL
from ._decode import read_kv
from .store import RedisQueues

__all__ = ["RedisCoordination"]


class RedisCoordination(RedisQueues):
    def kv_get(self, ns: str, key: str) -> bytes | None:
        h = f"{self._server.prefix}:kv:{ns}"
        value: bytes | None = self._server.call(
            "kv_get", lambda retried: self._server.execute("HGET", h, key)
        )
        return value

    def kv_items(self, ns: str) -> dict[str, bytes]:
        h = f"{self._server.prefix}:kv:{ns}"
        flat = self._server.call("kv_items", lambda retried: self._server.execute("HGETALL", h))
        return read_kv(flat, self._junk_fields(f"kv:{ns}"))

    def kv_set(self, ns: str, key: str, value: bytes) -> None:
        self._server.run("kv", "set", ns, key, bytes(value))

    def kv_setdefault(self, ns: str, key: str, value: bytes) -> bytes:
        held: bytes = self._server.run("kv", "setdefault", ns, key, bytes(value))
        return held

    def kv_delete(self, ns: str, key: str) -> bytes | None:
        old: bytes | None = self._server.run("kv", "delete", ns, key, retry_sent=False)
        return old

    def kv_cas(self, ns: str, key: str, expected: bytes | None, value: bytes | None) -> bool:
        # Not retried once sent: a swap whose reply was lost would read as refused the second time.
        args = (
            "1" if expected is not None else "0",
            expected if expected is not None else b"",
            "1" if value is not None else "0",
            value if value is not None else b"",
        )
        return bool(self._server.run("kv", "cas", ns, key, *args, retry_sent=False))

    def kv_incr(self, ns: str, key: str, amount: int | float) -> int | float:
        kind = "f" if isinstance(amount, float) else "i"
        try:  # not retried once sent: it would add twice
            tag, text = self._server.run(
                "kv", "incr", ns, key, kind, repr(amount), retry_sent=False
            )
        except StoreError as exc:
            if "overflow" in str(exc):
                raise OverflowError(f"key {key!r}: {exc}") from None
            raise
        if tag == b"o":
            raise OverflowError(f"key {key!r}: the sum is {text.decode()}")
        if tag == b"e":
            raise TypeError(
                f"key {key!r} holds {text.decode(errors='replace')}, not a number: it cannot be "
                f"incremented"
            )
        total: int | float = int(text) if tag == b"i" else float(text)
        return total

    def kv_incr_as(self, ns: str, key: str, amount: int | float, kind: str) -> int | float:
        if kind in ("f32", "f64"):
            args: tuple[str, ...] = (kind, repr(float(amount)))
        else:
            low, high = kind_range(kind)
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise TypeError(f"a number of kind {kind} is incremented by an int, not {amount!r}")
            # The script's integers stop at 20 digits. A sum of a held integer of the kind and an
            # amount past +-2**64 fits no kind, so the amount is cut down to that.
            args = ("i", str(max(-(2**64), min(amount, 2**64))), str(low), str(high))
        # Not retried once sent: it would add twice.
        tag, text = self._server.run("kv", "incr_as", ns, key, *args, retry_sent=False)
        if tag == b"o":
            raise OverflowError(f"key {key!r}: adding {amount!r} leaves no {kind}")
        if tag == b"e":
            held = text.decode(errors="replace") if text else text
            raise TypeError(f"key {key!r} holds {held!r}, not a number of kind {kind}")
        return int(text) if tag == b"i" else float(text)

    def kv_set_tail(self, ns: str, key: str, head: bytes, tail: bytes) -> None:
        with_tail(None, head, tail)  # refuses a head with a newline before anything is sent
        self._server.run("kv", "set_tail", ns, key, bytes(head), bytes(tail))

    def kv_incr_tail(self, ns: str, key: str, head: bytes, amount: int | float) -> int | float:
        with_tail(None, head, b"")
        if isinstance(amount, float):
            args: tuple[str, ...] = ("f", repr(amount))
        else:  # the script's integers stop at 20 digits; past 2**64 no sum fits anyway
            args = ("i", str(max(-(2**64), min(amount, 2**64))))
        # Not retried once sent: it would add twice.
        tag, text = self._server.run(
            "kv", "incr_tail", ns, key, bytes(head), *args, retry_sent=False
        )
        if tag == b"o":
            raise OverflowError(f"key {key!r}: the sum is {text.decode(errors='replace')}")
        if tag == b"e":
            held = text.decode(errors="replace") if text else text
            raise TypeError(f"key {key!r} holds {held!r}, not a number: it cannot be incremented")
        total: int | float = int(text) if tag == b"i" else float(text)
        return total

    def kv_clear(self, ns: str) -> int:
        removed: int = self._server.run("kv", "clear", ns, "")
        return removed

    def acquire_slot(
        self, name: str, holder: str, limit: int, ttl: float, claim: str | None = None
    ) -> float | None:
        wait = float(
            self._server.run("slots", "acquire", name, holder, limit, repr(float(ttl)), claim or "")
        )
        return None if wait < 0 else wait

    def release_slot(self, name: str, holder: str) -> bool:
        server = self._server

        def release(retried: bool) -> bool:
            gone = bool(server.script("slots", ("release", name, holder, repr(CLAIM_TTL))))
            return gone or retried  # sent again after a lost reply: the first one released it

        return server.call("release_slot", release)

    def renew_slots(self, name: str, holders: Sequence[str], ttl: float) -> int:
        if not holders:
            return 0
        renewed: int = self._server.run("slots", "renew", name, repr(float(ttl)), *holders)
        return renewed

    def slot_holders(self, name: str) -> list[str]:
        return sorted(
            self._decode_members(f"sl:{name}", self._server.run("slots", "holders", name))
        )

    def rate_acquire(
        self, name: str, interval: float, burst: int = 1, ticket: str | None = None
    ) -> float:
        # Not retried once sent without a ticket: it would count twice. With one, asking again is
        # what tickets are for.
        wait = self._server.run(
            "rate", name, repr(float(interval)), int(burst), ticket or "", retry_sent=bool(ticket)
        )
        return float(wait)
