"""The public conformance suite for stores: subclass :class:`StoreContract` (or the parts a
backend implements) in a pytest module and give it a ``store`` fixture that yields a fresh, empty
store of your backend."""

from .contract import (
    AcrossContract,
    ConsumerContract,
    CoordContract,
    DequeContract,
    JobContract,
    MarkContract,
    PlaceContract,
    QueueContract,
    StoreContract,
    TotalsContract,
    WorkflowContract,
)

__all__ = [
    "AcrossContract",
    "ConsumerContract",
    "CoordContract",
    "DequeContract",
    "JobContract",
    "MarkContract",
    "PlaceContract",
    "QueueContract",
    "StoreContract",
    "TotalsContract",
    "WorkflowContract",
]
