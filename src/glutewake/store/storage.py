"""Where the spool and sample trees live: a local folder or any fsspec URL.

The catalog (DuckDB, one writer) always sits in the local data directory. The two trees the
process tasks read and write - ``spool/`` and ``samples/`` - may live elsewhere, so that
workers on other machines see them: a shared filesystem path, or an object store
(``s3://bucket/study``, ``gs://...``, ``abfs://...``; the protocol's fsspec package, e.g.
``s3fs``, must be installed). Paths inside a store are POSIX strings relative to its root,
the same strings the catalog records (``spool_files.path``).

Local stores keep the durable write (tmp, fsync, rename, directory fsync); object stores write
each file with one PUT, which is atomic there.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glutewake.store.private import FILE_MODE, private_dir

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec import AbstractFileSystem


#: the finished segments of a device spool folder (named by ``store.spool.segment_name``)
SEGMENT_GLOB = "seg-*.parquet"


class StorageError(RuntimeError):
    """The store cannot be used (names the URL and the reason)."""


@functools.lru_cache(maxsize=16)
def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError:  # pragma: no cover - fsspec comes with the cluster extra
        raise StorageError(
            f"{url}: a storage URL needs fsspec: pip install 'glutewake[cluster]'"
        ) from None
    try:
        fs, root = url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{url}: cannot open this storage URL ({exc})") from exc
    return fs, str(root).rstrip("/")


@dataclass(frozen=True)
class Store:
    """The root holding ``spool/`` and ``samples/``: a local folder or an fsspec URL."""

    location: str
    #: a plain local folder (no URL): durable local writes, no fsspec needed
    local: bool

    @classmethod
    def of(cls, location: str | os.PathLike[str]) -> Store:
        text = os.fspath(location)
        if "://" in text and not text.startswith("file://"):
            return cls(text, local=False)
        return cls(str(Path(text.removeprefix("file://")).absolute()), local=True)

    def glob(self, pattern: str) -> list[str]:
        """Relative paths of the files or folders matching ``pattern``, sorted."""
        if self.local:
            folder = Path(self.location)
            return sorted(p.relative_to(folder).as_posix() for p in folder.glob(pattern))
        fs, root = _filesystem(self.location)
        return sorted(str(p)[len(root) + 1 :] for p in fs.glob(f"{root}/{pattern}"))

    def size(self, rel: str) -> int:
        if self.local:
            return (Path(self.location) / rel).stat().st_size
        fs, root = _filesystem(self.location)
        return int(fs.size(f"{root}/{rel}"))

    def read_table(self, rel: str) -> pa.Table:
        """A Parquet file as an Arrow table (page checksums verified where written)."""
        import pyarrow.parquet as pq

        # one thread per read: the process job already runs one task per core, and Arrow's
        # thread pool on top of that costs more CPU than it saves
        if self.local:
            return pq.read_table(
                Path(self.location) / rel, use_threads=False, page_checksum_verification=True
            )
        fs, root = _filesystem(self.location)
        with fs.open(f"{root}/{rel}", "rb") as fh:
            return pq.read_table(fh, use_threads=False, page_checksum_verification=True)

    @contextlib.contextmanager
    def open_parquet(self, rel: str) -> Iterator[pq.ParquetFile]:
        """A Parquet file opened for reading selected row groups and columns; pages that carry
        a checksum are verified as they are read (files written without one still read)."""
        import pyarrow.parquet as pq

        if self.local:
            path = Path(self.location) / rel
            with pq.ParquetFile(path, page_checksum_verification=True) as parquet:
                yield parquet
            return
        fs, root = _filesystem(self.location)
        with (
            fs.open(f"{root}/{rel}", "rb") as fh,
            pq.ParquetFile(fh, page_checksum_verification=True) as parquet,
        ):
            yield parquet

    def spool_folders(self) -> list[str]:
        """Every device spool folder (``spool/participant_id=*/device=*``), relative."""
        return self.glob("spool/participant_id=*/device=*")

    def spool_segments(self) -> dict[str, list[str]]:
        """The finished segments of every device spool folder, in record order (relative
        paths), by folder: one listing of the whole tree."""
        by_folder: dict[str, list[str]] = {}
        for seg in self.glob(f"spool/participant_id=*/device=*/{SEGMENT_GLOB}"):
            by_folder.setdefault(seg.rsplit("/", 1)[0], []).append(seg)
        return by_folder

    @contextlib.contextmanager
    def open_binary(self, rel: str) -> Iterator[Any]:
        """A file opened for reading bytes (seekable)."""
        if self.local:
            with open(Path(self.location) / rel, "rb") as fh:
                yield fh
            return
        fs, root = _filesystem(self.location)
        with fs.open(f"{root}/{rel}", "rb") as fh:
            yield fh

    def exists(self, rel: str) -> bool:
        if self.local:
            return (Path(self.location) / rel).exists()
        fs, root = _filesystem(self.location)
        return bool(fs.exists(f"{root}/{rel}"))

    def mtime_us(self, rel: str) -> int | None:
        """When a file was last written (UTC µs), where the store knows it."""
        if self.local:
            return (Path(self.location) / rel).stat().st_mtime_ns // 1000
        fs, root = _filesystem(self.location)
        try:
            return int(fs.modified(f"{root}/{rel}").timestamp() * 1e6)
        except (NotImplementedError, AttributeError, ValueError, OSError):
            return None

    def read_bytes(self, rel: str) -> bytes:
        if self.local:
            return (Path(self.location) / rel).read_bytes()
        fs, root = _filesystem(self.location)
        return bytes(fs.cat_file(f"{root}/{rel}"))

    def move(self, rel: str, to_rel: str) -> None:
        """Move a file within the store (atomic rename on a local disk)."""
        if not self.local:
            fs, root = _filesystem(self.location)
            fs.mv(f"{root}/{rel}", f"{root}/{to_rel}")
            return
        src, dst = Path(self.location) / rel, Path(self.location) / to_rel
        private_dir(dst.parent)
        os.replace(src, dst)
        for folder in {src.parent, dst.parent}:
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def remove(self, rel: str) -> None:
        """Delete a file (no error if it is already gone)."""
        if self.local:
            (Path(self.location) / rel).unlink(missing_ok=True)
            return
        fs, root = _filesystem(self.location)
        if fs.exists(f"{root}/{rel}"):
            fs.rm_file(f"{root}/{rel}")

    def write_bytes(self, rel: str, data: bytes | memoryview) -> None:
        """Write a whole file so that readers see the old file or the new one, never a part."""
        if not self.local:
            fs, root = _filesystem(self.location)
            fs.pipe_file(f"{root}/{rel}", data)
            return
        with self._durable_local(rel) as fh:
            fh.write(data)

    @contextlib.contextmanager
    def _durable_local(self, rel: str) -> Iterator[io.BufferedWriter]:
        """A local file written as ``*.tmp``, fsynced, then renamed over ``rel``."""
        final = Path(self.location) / rel
        private_dir(final.parent)
        tmp = final.with_name(final.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, final)

    def write_parquet(self, rel: str, table: pa.Table, **options: Any) -> None:
        """Write an Arrow table as Parquet (``pyarrow.parquet.write_table`` options), atomically
        (see :meth:`write_bytes`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.local:  # straight into the file: no second copy of it in memory
            with self._durable_local(rel) as fh:
                pq.write_table(table, fh, **options)
            return
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **options)
        self.write_bytes(rel, memoryview(sink.getvalue()))
