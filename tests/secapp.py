"""A module that imports dangerous things, for the tests of which names a worker may run."""

from __future__ import annotations

import os  # noqa: F401 -- reachable as secapp.os: what a crafted name tries to walk through
import subprocess  # noqa: F401
from os import popen  # noqa: F401 -- a function of another package, under a name of this module
from pathlib import Path

import baozi  # noqa: F401 -- a way into baozi._process.os, which a crafted name once walked


def touch(path: str) -> str:
    Path(path).touch()
    return "touched"


also_touch = touch  # its own name is still "touch"


class Tools:
    @staticmethod
    def touch(path: str) -> str:
        Path(path).touch()
        return "touched by Tools"

    def __init__(self, path: str) -> None:
        Path(path).touch()
