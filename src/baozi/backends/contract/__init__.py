"""The parts of the store contract; :mod:`baozi.backends.base` combines them."""
