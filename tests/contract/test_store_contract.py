"""The store contract, run on every backend through the ``store`` fixture in conftest.py."""

from baozi.testing import StoreContract


class TestStoreContract(StoreContract):
    pass
