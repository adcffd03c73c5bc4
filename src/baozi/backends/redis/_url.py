"""A redis:// URL: baozi's own options split off what goes to the client library."""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def parse_url(url: str) -> tuple[str, str, float]:
    """Split baozi's own options (``prefix``, ``retry``) off a redis:// or rediss:// URL.

    Returns the URL for the client library, the key prefix and the retry window in seconds.
    """
    parts = urlsplit(url)
    prefix, retry = "baozi", 2.0
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "prefix":
            if not value or any(c in value for c in " {}"):
                raise ValueError(
                    f"invalid prefix {value!r} in {url!r}: use a non-empty key prefix without "
                    "spaces or braces, such as ?prefix=myapp"
                )
            prefix = value
        elif key == "retry":
            try:
                retry = float(value)
            except ValueError:
                retry = -1.0
            if not (retry >= 0 and math.isfinite(retry)):
                raise ValueError(
                    f"invalid retry={value!r} in {url!r}: give the seconds to keep retrying a "
                    "call while Redis is unreachable, such as ?retry=2"
                )
        elif key in ("decode_responses", "protocol", "encoding"):
            raise ValueError(
                f"{key}= in {url!r} is not supported: baozi reads the server's replies itself "
                "(bytes, RESP2); leave it out"
            )
        else:
            rest.append((key, value))
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return client_url, prefix, retry
