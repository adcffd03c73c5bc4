"""Settings, read from ``BAOZI_*`` environment variables when they are loaded, never at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_URL", "Settings", "load_settings"]

DEFAULT_URL = "sqlite:///baozi.db"


@dataclass(frozen=True, slots=True)
class Settings:
    url: str = DEFAULT_URL
    """The store used when none is given: ``BAOZI_URL``, else an SQLite file in the working directory."""
    transport: str | None = None
    """The broker that delivers jobs (``amqp://...``) when an app names none: ``BAOZI_TRANSPORT``,
    else none (the store delivers them)."""


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    return Settings(
        url=env.get("BAOZI_URL") or DEFAULT_URL, transport=env.get("BAOZI_TRANSPORT") or None
    )
