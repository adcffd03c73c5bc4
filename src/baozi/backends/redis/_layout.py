"""The layout of a Redis store: the version recorded under ``PREFIX:layout``, checked when a
process first talks to the store, and the Lua scripts that migrate an older layout in place.

A store whose keys were written before layouts carried a version has none recorded: it is
layout 1, and the first process to open it records that. An empty store gets the latest layout.
An older layout is migrated one step at a time, each step one script, which checks the version
it starts from and sets the next one as it ends: scripts run one at a time, so processes that
open the store at once migrate it once. A layout newer than this baozi's is refused, and the
store left untouched.

Redis does not undo a script that fails partway, so a step reads and checks everything it will
touch before its first write; one that fails before then leaves the store as it was,
at its old layout. A step that needs what only Python works out (:class:`Prepared`) returns its
questions from that reading, having written nothing, and runs again with the answers: only a
run that finds every answer it needs writes, all in that one script. A change to the keys is a
new step in :data:`MIGRATIONS`, and the scripts that read the keys change with it.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis import ResponseError

from ..._dictkeys import old_key_text
from ...errors import StoreError

log = logging.getLogger("baozi.redis")

KEY = "layout"
"""Under the store's prefix: the layout version, as decimal text."""


@dataclass(frozen=True)
class Prepared:
    """A step that needs what only Python works out. Its ``body`` reads what it will touch
    and, when that needs an answer it was not given, returns the list of questions before any
    write; ``answer`` maps each question (as text) to its answer, and the step runs again with
    every answer so far as ARGV[3] on: question, answer, question, answer ... in the order of
    the questions' bytes."""

    body: str
    answer: Callable[[str], str]


# Every field of every Dict hash (P:kv:dict:*) is the old key text; each one needs its
# canonical text (baozi._dictkeys.old_key_text). The ARGV pairs come sorted by old text, so a
# pair's place ranks it: of the fields of one hash that are now one key (1, 1.0, true), the
# one whose old text sorts first (as Python orders str) wins, key and value. Each value becomes
# the record old text, newline, value. Lua compares strings by the server's locale, so the
# ranks come from Python, not from a sort here.
_DICT_KEYS = r"""
local canonical, rank = {}, {}
for i = 3, #ARGV, 2 do
  canonical[ARGV[i]] = ARGV[i + 1]
  rank[ARGV[i]] = i
end
local pattern = string.gsub(P, '[%*%?%[%]\\]', '\\%0') .. ':kv:dict:*'
local hashes, seen, asked, questions = {}, {}, {}, {}
local cursor = '0'
repeat
  local found = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
  cursor = found[1]
  for _, h in ipairs(found[2]) do
    if not seen[h] and redis.call('TYPE', h)['ok'] == 'hash' then
      seen[h] = true
      table.insert(hashes, h)
      for _, field in ipairs(redis.call('HKEYS', h)) do
        if canonical[field] == nil and not asked[field] then
          asked[field] = true
          table.insert(questions, field)
        end
      end
    end
  end
until cursor == '0'
if #questions > 0 then return questions end
for _, h in ipairs(hashes) do
  local flat, winner = redis.call('HGETALL', h), {}
  for i = 1, #flat, 2 do
    local new = canonical[flat[i]]
    if winner[new] == nil or rank[flat[i]] < rank[flat[winner[new]]] then winner[new] = i end
  end
  local args = {}
  for new, i in pairs(winner) do
    table.insert(args, new)
    table.insert(args, flat[i] .. '\n' .. flat[i + 1])
  end
  redis.call('DEL', h)
  for j = 1, #args, 1000 do redis.call('HSET', h, unpack(args, j, math.min(j + 999, #args))) end
end
"""

MIGRATIONS: dict[int, str | Prepared] = {
    # 1 -> 2: unique keys and dependencies. The step writes nothing but the version: the new
    # hash fields (u, uw, uf, pa, od, hc), the state 3 (waiting) and the new keys (P:q:NAME:a,
    # P:uq:*, P:ch:*, P:pw:*) are absent from a layout-1 store, whose jobs read as having no
    # key and no dependencies. What the version does is keep a baozi that reads only layout 1
    # -- and would take a waiting job for junk -- away from the store from then on.
    1: "",
    # 2 -> 3: baozi.Dict keys by their canonical text, each value a record that starts with
    # the key (see _DICT_KEYS). One script: it asks for the texts it lacks before it writes.
    2: Prepared(_DICT_KEYS, old_key_text),
    # 3 -> 4: publish-pending marks (P:q:NAME:p). The step writes nothing but the version: a
    # layout-3 store has no marks. What the version does is keep a baozi that does not know
    # them -- and would leave a job's mark behind when it removes the job -- away from the store.
    3: "",
    # 4 -> 5: the owner of a job's last run that ended (the item hash's field w). The step
    # writes nothing but the version: a layout-4 store's jobs read as no run having ended with
    # an owner kept. What the version does is keep a baozi that does not know the field -- and
    # would leave a requeued job naming the worker of its run before -- away from the store.
    4: "",
}
"""Layout N -> the Lua body of the step that takes a store from N to N + 1 (or a
:class:`Prepared` one). It runs inside the script :func:`_step_script` makes, with ``P`` the key
prefix, after that script has checked that the store is still at N; the script records N + 1
when the body returns nothing."""


def latest() -> int:
    """The layout this baozi writes: the one after the last migration."""
    return 1 + len(MIGRATIONS)


class _Server(Protocol):
    prefix: str
    where: str


_checked: weakref.WeakSet[Any] = weakref.WeakSet()
"""The servers (one per process and URL) whose store's layout has been checked."""


def opened(server: _Server, conn: Any) -> Any:
    """``conn``, a new connection of ``server``. The first one a server makes checks the store's
    layout first (records, migrates or refuses it); a failure disconnects it and is raised:
    a connection error to be retried like any other, or a StoreError."""
    if server in _checked:
        return conn
    try:
        check(conn, server.prefix, server.where)
    except BaseException:
        with contextlib.suppress(Exception):  # it may be broken already
            conn.disconnect()
        raise
    _checked.add(server)
    return conn


def check(conn: Any, prefix: str, where: str) -> int:
    """Bring the store under ``prefix`` to the latest layout over ``conn``; return it."""
    key = f"{prefix}:{KEY}"
    found = _command(conn, "GET", key)
    while True:
        if found is None:
            found = _record(conn, prefix, where)
        version = _version(found, key, where)
        if version == latest():
            return version
        if version > latest():
            raise StoreError(
                f"the baozi store at Redis {where} (prefix {prefix!r}) has layout {version}, and "
                f"this baozi reads layouts up to {latest()}: a newer baozi migrated it. Upgrade "
                f"baozi where this process runs to open it (a store is never migrated back); "
                f"baozi left it untouched"
            )
        found = _migrate(conn, prefix, version, where)


def _command(conn: Any, *args: Any) -> Any:
    conn.send_command(*args)
    return conn.read_response()


def _version(found: Any, key: str, where: str) -> int:
    text = found.decode("ascii", "replace") if isinstance(found, bytes) else str(found)
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise StoreError(
            f"{key} at Redis {where} holds {found!r}, which is no layout version baozi wrote "
            f"(this baozi writes {latest()}); baozi left the store untouched"
        )
    return int(text)


def _record(conn: Any, prefix: str, where: str) -> Any:
    """Record the layout of a store that has none recorded: 1 if it holds keys (written before
    layouts had versions), else the latest; return what is recorded then (a racing opener may
    have recorded it first)."""
    # A store whose prefix extends this one ("baozi:x") counts too: at worst an empty store is
    # migrated, which changes nothing.
    pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + ":*"
    cursor, keys = _command(conn, "SCAN", 0, "MATCH", pattern, "COUNT", 1000)
    while not keys and int(cursor) != 0:
        cursor, keys = _command(conn, "SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
    key = f"{prefix}:{KEY}"
    if _command(conn, "SET", key, 1 if keys else latest(), "NX") and keys:
        log.info(
            "the baozi store at Redis %s (prefix %r) had no layout recorded: recorded layout 1",
            where,
            prefix,
        )
    return _command(conn, "GET", key)


_STEP = """
local P, FROM = ARGV[1], ARGV[2]
local K = P .. ':layout'
local now = redis.call('GET', K)
if now ~= FROM then return {now or '', 0} end  -- another process moved it on (or it went away)
local function step()
-- @body
end
local questions = step()
if questions then return {now, 0, questions} end  -- nothing written: asked for answers
redis.call('SET', K, tostring(tonumber(FROM) + 1))
return {redis.call('GET', K), 1}
"""


def _step_script(version: int) -> str:
    step = MIGRATIONS[version]
    return _STEP.replace("-- @body", step.body if isinstance(step, Prepared) else step)


_ROUNDS = 100
"""How many times a :class:`Prepared` step may ask before the migration gives up (each round
asks only about what was written since the last: a store that older processes keep writing
new things to)."""


def _migrate(conn: Any, prefix: str, version: int, where: str) -> Any:
    """Run the step from ``version`` (one script, run again while it asks for answers); return
    the layout recorded after it."""
    step, script = MIGRATIONS[version], _step_script(version)
    answers: dict[bytes, bytes] = {}
    for _ in range(_ROUNDS):
        args = [x for q in sorted(answers) for x in (q, answers[q])]
        try:
            found, ran, *asked = _command(conn, "EVAL", script, 0, prefix, str(version), *args)
        except ResponseError as exc:
            raise StoreError(
                f"cannot migrate the baozi store at Redis {where} (prefix {prefix!r}) from "
                f"layout {version} to {version + 1} ({exc}); its layout is still {version}"
            ) from exc
        if ran or not asked or not isinstance(step, Prepared):
            break
        for question in asked[0]:
            try:
                answers[question] = step.answer(question.decode()).encode()
            except UnicodeDecodeError:  # no text: no key a Dict wrote, and kept as it is
                answers[question] = question
    else:
        raise StoreError(
            f"cannot migrate the baozi store at Redis {where} (prefix {prefix!r}) from layout "
            f"{version} to {version + 1}: it kept changing under {_ROUNDS} tries; its layout is "
            f"still {version}. Stop the processes of older baozi versions that write to it"
        )
    if ran:
        log.info(
            "migrated the baozi store at Redis %s (prefix %r) from layout %d to %d",
            where,
            prefix,
            version,
            version + 1,
        )
    return found or None
