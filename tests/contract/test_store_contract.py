"""The store contract, run on every backend through the ``store`` fixture in conftest.py."""

import pytest

from baozi.testing import StoreContract

from .._helpers import needs_deque_ops


class TestStoreContract(StoreContract):
    @pytest.fixture(autouse=True)
    def _deque_ops_or_skip(self, request: pytest.FixtureRequest, url: str) -> None:
        if request.function.__qualname__.startswith("DequeContract."):
            needs_deque_ops(url)
