"""``sqlite:///path.db``: the embedded default store, one SQLite file shared by every process.

The file runs in WAL mode. By default (``durable=process``) a commit survives the death of the
process that made it -- kill -9 included -- but not a power cut; ``?durable=fsync`` syncs every
commit to disk as well. Other processes' changes are noticed through ``PRAGMA data_version``,
checked by one thread per process while something waits: when inotify reports a write to the WAL
(Linux), or every few milliseconds otherwise.
"""

from .jobs import SQLiteStore

__all__ = ["SQLiteStore"]
