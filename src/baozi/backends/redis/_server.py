"""One Redis server as this process sees it, shared by every handle on the store."""

from __future__ import annotations

from .._registry import Registry
from .._signal import ChangeSignal
from ._feed import Feed
from ._hands import Hands
from ._pushes import Pushes


class Server(Pushes, Hands):
    """What one process shares for one URL: the connections and scripts (:class:`Link`), job
    pushes (:class:`Pushes`), hand-offs (:class:`Hands`), and the change signal with its feed.

    Handles share it through a reference count; the last one to close it disconnects.
    """

    @classmethod
    def acquire(cls, url: str) -> Server:
        """This process's server for ``url``, made by the first handle that asks."""
        return _SERVERS.acquire(url)

    def release(self) -> None:
        """One handle fewer; the last one disconnects."""
        _SERVERS.release(self.url)

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.known: set[str] = set()  # queues this process has seen recorded in the store
        self.channel = f"{self.prefix}:changed"
        self.inbox = f"{self.prefix}:in"
        self.signal = ChangeSignal()
        self._feed = Feed(self)

    def _close(self) -> None:
        self._feed.stop()
        self.signal.close()
        super()._close()

    def token(self) -> int:
        """A change token (see :meth:`ChangeSignal.token`) taken once the feed is subscribed, so
        that no change after it is missed."""
        self._feed.ensure()
        return self.signal.token()


_SERVERS: Registry[str, Server] = Registry(Server, Server._close)
