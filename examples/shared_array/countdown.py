"""The tutorial's second Array example, with baozi: four processes count one number down, each
step a read and a write under the array's lock.

Run it: ``python countdown.py`` prints ``0``, then ``0`` again for the count made with ``add``.
"""

from __future__ import annotations

import multiprocessing

import baozi

PROCESSES, STEPS = 4, 100


def count_down(counter: baozi.Array) -> None:
    for _ in range(STEPS):
        with counter.get_lock():  # a baozi.Lock: it excludes every process on the store
            counter[0] = counter[0] - 1  # a read, then a write: lost updates without the lock


def count_down_in_one_step(counter: baozi.Array) -> None:
    for _ in range(STEPS):
        counter.add(0, -1)  # the read and the write are one step in the store: no lock needed


def run(target: object, counter: baozi.Array) -> int:
    counter[0] = PROCESSES * STEPS  # set afresh: the array stays in the store from run to run
    procs = [multiprocessing.Process(target=target, args=(counter,)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter[0]


if __name__ == "__main__":
    counter = baozi.Array("countdown", "i", 1)
    print(run(count_down, counter))
    print(run(count_down_in_one_step, counter))
