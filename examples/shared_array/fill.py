"""The tutorial's first Array example, with baozi: five processes each write their own element.

Run it: ``python fill.py`` prints ``[100, 101, 102, 103, 104]``.
"""

from __future__ import annotations

import multiprocessing

import baozi


def fill(i: int, arr: baozi.Array) -> None:
    arr[i] = i + 100  # written to the store: the parent, and any other process, reads it there


if __name__ == "__main__":
    arr = baozi.Array("numbers", "i", 5)  # in baozi.db in this folder (or at $BAOZI_URL)
    procs = [multiprocessing.Process(target=fill, args=(i, arr)) for i in range(5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(arr[:])
