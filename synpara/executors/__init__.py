"""Executors: the only code that knows about parallelism, files and resumption.

``run.run_stage`` drives a stage over its input; ``journal`` owns the output directory (journal,
lock, completeness); ``worker`` says what one record's outcome is; a runner computes records:
``local`` (worker processes on this machine, the default) or ``ray`` (Ray Data actors).
``stream.run_streamed`` drives consecutive stages at once (a pipeline's default): each record goes
on to the next stage as soon as it is done, each stage keeps its own directory; on the local pool,
or on Ray as one Ray Data chain with actors per stage (``ray_stream``).

Adding an executor = one module with a ``run_records(job, records, on_done)`` function and one line
in :data:`RUNNERS`; the CLI and the pipeline YAML pick it up from this table. Nothing here imports
another executor module, so the package has no import loop.
"""

#: executor name -> ``module:function`` of its runner, imported only when used.
RUNNERS: dict[str, str] = {
    "local": "synpara.executors.local:run_records",
    "ray": "synpara.executors.ray:run_records",
}
EXECUTORS = tuple(RUNNERS)

__all__ = ["EXECUTORS", "RUNNERS"]
