"""Behaviour every store must show, written once and run against every backend, in the parts
of the store contract: :class:`QueueContract`, :class:`JobContract` (with the job totals of
:class:`TotalsContract` and the unique keys and dependencies of :class:`WorkflowContract`),
:class:`CoordContract` and :class:`ConsumerContract`; where a job stands, :class:`PlaceContract`.
:class:`StoreContract` is all of them.

Usage (pytest)::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            s = open_store("mystore://...")  # fresh and empty
            yield s
            s.close()

Something that implements only some parts of the contract subclasses only those.
"""

from .consumer import ConsumerContract
from .coord import CoordContract
from .jobs import JobContract
from .places import PlaceContract
from .queues import QueueContract
from .totals import TotalsContract
from .workflows import WorkflowContract

__all__ = [
    "ConsumerContract",
    "CoordContract",
    "JobContract",
    "PlaceContract",
    "QueueContract",
    "StoreContract",
    "TotalsContract",
    "WorkflowContract",
]


class StoreContract(
    QueueContract,
    JobContract,
    PlaceContract,
    TotalsContract,
    WorkflowContract,
    CoordContract,
    ConsumerContract,
):
    """Every part of the contract: subclass it and provide a ``store`` fixture."""
