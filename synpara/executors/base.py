"""Old home of the executor: kept so ``synpara.executors.base`` imports keep working while callers
move to ``run`` (driver), ``journal`` (output directory) and ``worker`` (per record)."""

from synpara.executors import EXECUTORS
from synpara.executors.journal import DONE_FILE, PARTS_DIR, STAGE_FILE, SUCCESS_FILE
from synpara.executors.run import RunSummary, run_stage
from synpara.executors.worker import Job, available_cores, record_line

default_workers = available_cores

__all__ = [
    "DONE_FILE",
    "EXECUTORS",
    "PARTS_DIR",
    "STAGE_FILE",
    "SUCCESS_FILE",
    "Job",
    "RunSummary",
    "default_workers",
    "record_line",
    "run_stage",
]
