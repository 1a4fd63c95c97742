"""Executors: the only code that knows about parallelism, files and resumption.

``run_stage`` (in ``base``) owns the output directory; a runner computes records: ``local``
(worker processes on this machine, the default) or ``ray`` (Ray Data actors on a Ray cluster).
"""

from synpara.executors.base import EXECUTORS, RunSummary, run_stage

__all__ = ["EXECUTORS", "RunSummary", "run_stage"]
