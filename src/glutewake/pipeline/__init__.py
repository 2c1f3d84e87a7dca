"""The process job as a package: spool -> decoded samples -> detectors -> catalog.

- :mod:`~glutewake.pipeline.process`: orchestration (:func:`process`, :func:`add_recordings`);
- :mod:`~glutewake.pipeline.decode`: decode tasks, one per device spool folder;
- :mod:`~glutewake.pipeline.sitting`: sitting tasks, one per participant-day;
- :mod:`~glutewake.pipeline.emg_sessions`: EMG tasks, one per MVC trial or exercise session;
- :mod:`~glutewake.pipeline.parallel`: where tasks run (serially, a process pool, Dask);
- :mod:`~glutewake.pipeline.write`: the one short catalog transaction per batch;
- :mod:`~glutewake.pipeline.rows`: what tasks return.

This package (with ``simulate`` and the CLI) is where the parts meet: it reads through
``store``, decodes with ``devices``, detects with ``signal`` and measures with ``analytics``.
"""

from __future__ import annotations

from glutewake.pipeline.process import add_recordings, import_files, process
from glutewake.pipeline.rows import ProcessError, ProcessSummary, ProgressHook
from glutewake.pipeline.write import catalog_columns
from glutewake.store.samples import NewRecording

__all__ = [
    "NewRecording",
    "ProcessError",
    "ProcessSummary",
    "ProgressHook",
    "add_recordings",
    "catalog_columns",
    "import_files",
    "process",
]
