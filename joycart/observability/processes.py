"""The multiprocess directory prometheus-client shares between `serve`'s processes.

prometheus-client picks its storage when it is first imported, from PROMETHEUS_MULTIPROC_DIR, so
the parent sets the variable before anything imports it; every process it starts inherits it.
This module must not import prometheus-client itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir() -> tuple[Path, bool]:
    """The directory to use, emptied of an earlier run's files; True if we created it (and so
    remove it at exit) rather than the operator."""
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # counters of processes that are gone
            stale.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="joycart-metrics-"))
    os.environ[ENV] = str(path)
    return path, True


def remove_metrics_dir(path: Path, owned: bool) -> None:
    if owned:
        shutil.rmtree(path, ignore_errors=True)
