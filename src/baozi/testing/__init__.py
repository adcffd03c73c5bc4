"""The public conformance suite for stores: subclass :class:`StoreContract` in a pytest module and
give it a ``store`` fixture that yields a fresh, empty store of your backend."""

from .contract import StoreContract

__all__ = ["StoreContract"]
