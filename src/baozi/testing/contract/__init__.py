"""Behaviour every store must show, written once and run against every backend, in the parts
of the store contract: :class:`QueueContract`, :class:`JobContract` (with the job totals of
:class:`TotalsContract` and the unique keys and dependencies of :class:`WorkflowContract`),
:class:`CoordContract` and :class:`ConsumerContract`; :class:`DequeContract` covers the queue
contract's deque operations (``rotate``, ``splice``), :class:`PlaceContract` where a job stands
(``job_snapshot``), :class:`AcrossContract` jobs filed into several queues in one step
(``enqueue_across``), :class:`MarkContract` the publish-pending marks of jobs,
:class:`ListingContract` the listing a dashboard reads (``records_page``, ``oldest_ready``,
``running_jobs``, ``JobRecord.worker``).
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

from .across import AcrossContract
from .consumer import ConsumerContract
from .coord import CoordContract
from .deques import DequeContract
from .jobs import JobContract
from .listing import ListingContract
from .marks import MarkContract
from .places import PlaceContract
from .queues import QueueContract
from .totals import TotalsContract
from .workflows import WorkflowContract

__all__ = [
    "AcrossContract",
    "ConsumerContract",
    "CoordContract",
    "DequeContract",
    "JobContract",
    "ListingContract",
    "MarkContract",
    "PlaceContract",
    "QueueContract",
    "StoreContract",
    "TotalsContract",
    "WorkflowContract",
]


class StoreContract(
    QueueContract,
    DequeContract,
    JobContract,
    PlaceContract,
    AcrossContract,
    MarkContract,
    ListingContract,
    TotalsContract,
    WorkflowContract,
    CoordContract,
    ConsumerContract,
):
    """Every part of the contract: subclass it and provide a ``store`` fixture."""
