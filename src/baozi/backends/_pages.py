"""What the stores share to list jobs page by page (``records_page``): the cursor, the checks
of the arguments, and how a search matches a task name."""

from __future__ import annotations

import re

from .contract.records import STATUSES, JobRecord

__all__ = ["check_page", "cursor_of", "fold", "key_of", "matches"]

_CURSOR = re.compile(r"p(0|[1-9][0-9]{0,18})")

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def cursor_of(key: int) -> str:
    """The cursor of a page that stopped at the job whose order key is ``key``: the next page
    holds the jobs whose keys are below it."""
    return f"p{key}"


def key_of(cursor: str | None) -> int | None:
    """The order key a cursor names (None for the first page); ``ValueError`` for a cursor
    no store made."""
    if cursor is None:
        return None
    found = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if found is None:
        raise ValueError(
            f"{cursor!r} is not a cursor of records_page: pass back the cursor a call returned "
            "(or None for the first page)"
        )
    return int(found[1])


def check_page(status: str | None, limit: int) -> None:
    """``ValueError`` for a status that is none of :data:`STATUSES` or a limit below 1."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"no job status {status!r}: use one of {', '.join(STATUSES)}")
    if limit < 1:
        raise ValueError(f"limit={limit!r}: a page holds at least one job")


def fold(text: str) -> str:
    """``text`` with its ASCII capitals made small (other characters as they are): how a
    search and a task name are compared, the same way in every store."""
    return text.translate(_ASCII_LOWER)


def matches(
    rec: JobRecord,
    status: str | None,
    task: str | None,
    since: float | None,
    until: float | None,
    search: str | None,
) -> bool:
    """Whether a record passes the filters of ``records_page`` (all but the queue)."""
    return (
        (status is None or rec.status == status)
        and (task is None or rec.task == task)
        and (since is None or rec.created_at >= since)
        and (until is None or rec.created_at < until)
        and (search is None or rec.id == search or fold(search) in fold(rec.task))
    )
