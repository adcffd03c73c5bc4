"""Run statistics that outlive any process, kept in the store's key-value namespaces: per-task
counts and run times, runs per queue over time, queue depths over time, and each job's attempt
log -- what a dashboard reads, through any store, after any restart.

Workers count the runs they settle in memory (:class:`RunStats`) and add them every few seconds
to shared buckets with a compare-and-set read-merge-write, so the counts of many workers add up
and none is lost. A run counts by the time it ended, in 10-second buckets (kept 2 hours) and
minute buckets (kept 25 hours), one namespace per hour (see ``_layout``):

* **succeeded** -- it returned;
* **failed** -- it raised (or timed out), whether or not its job runs again; a job refused
  without running (its task unknown, its arguments unreadable, its worker lost on each of its
  last deliveries) counts here too, with no run time;
* **retried** -- of the failed runs, those whose job was scheduled to run again (a task that
  raises :class:`~baozi.Retry` to run again later counts here too: its run did not finish).

A run cancelled while it ran, or a job held back by a limit, counts nothing; nor does a run
whose worker died. Run times go into a histogram of bins 10% apart, so a percentile read back
is within 5% of the true one.

A run that did not succeed, and a job's run after an earlier attempt, also add an entry to the
job's attempt log, in a namespace per hour of the job's creation (kept 8 days), so reading it
costs one ``kv_get``. The web server's observer keeps the largest of each queue count it
sampled per bucket (:class:`DepthSamples`). A write that fails is tried again at the next
flush; one that the store applied but whose answer was lost is applied again, so an outage may
count a few runs twice.
"""

from ._depth import DepthSamples, DepthSeries, depth_series
from ._prune import prune
from ._read import Attempt, Percentiles, TaskStats, Throughput, attempt_log, task_stats, throughput
from ._record import RunStats

__all__ = [
    "Attempt",
    "DepthSamples",
    "DepthSeries",
    "Percentiles",
    "RunStats",
    "TaskStats",
    "Throughput",
    "attempt_log",
    "depth_series",
    "prune",
    "task_stats",
    "throughput",
]
