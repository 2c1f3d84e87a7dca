"""The data directory: one folder that holds a deployment's everything.

Layout (documented in ``docs/storage.md``)::

    DATA/
      spool/participant_id=<P>/device=<D>/<segment>.parquet    raw GATT records (the truth)
      samples/stream=<S>/participant_id=<P>/date=<YYYY-MM-DD>/<file>.parquet   decoded samples
      catalog.duckdb                                            derived tables and views
      catalog.lock                                              writers' lock file
      reports/                                                  HTML reports
      logs/                                                     collector logs

Chosen by ``--data DIR``, else ``$GLUTEWAKE_DATA``, else the per-user data directory
(``platformdirs.user_data_dir("glutewake")``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from glutewake.store.ids import device_component, participant_component
from glutewake.store.private import private_dir

if TYPE_CHECKING:
    from glutewake.store.storage import Store

ENV_VAR = "GLUTEWAKE_DATA"


def default_data_dir() -> Path:
    """The per-user default data directory (no folder is created)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("glutewake", appauthor=False))


def safe_component(value: str) -> str:
    """Turn a device id into a path component, one-to-one (``ids.device_component``).

    Participant ids are not mapped but checked: :func:`~glutewake.store.ids.participant_component`.

    >>> safe_component("A0:9E:1A:12:34:56")
    'A0-9E-1A-12-34-56'
    """
    return device_component(value)


@dataclass(frozen=True)
class DataDir:
    """Paths inside one data directory.

    ``storage``, if given, is where the ``spool/`` and ``samples/`` trees live instead of
    ``root`` (a shared path or an fsspec URL such as ``s3://bucket/study``) so that workers on
    other machines can read and write them; the catalog stays in ``root``.
    """

    root: Path
    storage: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def store(self) -> Store:
        """The store holding ``spool/`` and ``samples/`` (the data directory by default)."""
        from glutewake.store.storage import Store

        return Store.of(self.storage if self.storage else self.root)

    @classmethod
    def resolve(cls, data: str | os.PathLike[str] | None = None) -> DataDir:
        """Pick the data directory: the argument, then ``$GLUTEWAKE_DATA``, then the default."""
        if data is not None:
            return cls(Path(data).expanduser().absolute())
        env = os.environ.get(ENV_VAR)
        if env:
            return cls(Path(env).expanduser().absolute())
        return cls(default_data_dir())

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def lock(self) -> Path:
        return self.root / "catalog.lock"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def spool_dir(self, participant_id: str, device_id: str) -> Path:
        """Folder of one device's spool segments for one participant."""
        return (
            self.spool
            / f"participant_id={participant_component(participant_id)}"
            / f"device={device_component(device_id)}"
        )

    def create(self) -> DataDir:
        """Create the folder tree, readable by the owner only (health data)."""
        for path in (self.root, self.spool, self.samples, self.reports, self.logs):
            private_dir(path)
        os.chmod(self.root, 0o700)
        return self

    def exists(self) -> bool:
        return self.root.is_dir()
