"""Message bodies that programs which are not baozi can read and write.

A str goes as UTF-8 text, bytes as bytes, and a value plain JSON holds exactly as JSON; anything
else baozi's codec can store (tuples, datetimes, sets, ...) goes as baozi's tagged JSON under a
content type of its own, so it survives between baozi programs and other programs can tell it
apart. Reading goes by the content type: JSON from any producer, text, baozi's JSON, and the
bytes as they are when the type says nothing else.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..serialize import JsonSerializer

TEXT = "text/plain; charset=utf-8"
BYTES = "application/octet-stream"
JSON = "application/json"
TAGGED = "application/x-baozi+json"

_TAG = "__baozi__"
_codec = JsonSerializer()
_dump_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _plain(value: Any) -> bool:
    """Whether JSON holds ``value`` exactly: what ``json.loads`` gives back is equal and of the
    same types (no tuples, no non-str keys, no nan or inf, no subclasses)."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_plain(x) for x in value)
    if kind is dict:
        return _TAG not in value and all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def encode(value: Any) -> tuple[bytes, str]:
    """The body and content type for ``value``; TypeError for what baozi's codec refuses."""
    if type(value) is str:
        return value.encode(), TEXT
    if type(value) is bytes:
        return value, BYTES
    if _plain(value):
        return _dump_json(value).encode(), JSON
    return _codec.dumps(value), TAGGED


def decode(body: bytes, content_type: str | None) -> Any:
    """The value a message carries, read by its content type. Raises ValueError (or
    UnicodeDecodeError) when the body is not what its type says."""
    mime, _, params = (content_type or "").partition(";")
    mime = mime.strip().lower()
    charset = "utf-8"
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip('"')
    if mime == TAGGED:
        return _codec.loads(body)
    if mime == JSON or (mime.startswith("application/") and mime.endswith("+json")):
        return json.loads(body.decode(charset))
    if mime.startswith("text/"):
        return body.decode(charset)
    return body
