"""The first bytes of a file, for recognising its format from content."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Head:
    """The start of a file: raw bytes and, if it is text, its first complete lines."""

    path: Path
    raw: bytes
    lines: tuple[str, ...]

    @classmethod
    def read(cls, path: Path) -> Head:
        with open(path, "rb") as fh:
            raw = fh.read(HEAD_BYTES)
        text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
        lines = text.splitlines()
        if len(raw) == HEAD_BYTES and lines:
            lines = lines[:-1]  # the last line may be cut by the byte limit
        return cls(path=path, raw=raw, lines=tuple(lines))

    @property
    def is_text(self) -> bool:
        return b"\x00" not in self.raw[:4096]

    def first_value(self, line_idx: int, column: int, separator: str) -> str | None:
        """Field ``column`` of line ``line_idx`` (0-based), if that line is in the head."""
        if line_idx >= len(self.lines):
            return None
        fields = self.lines[line_idx].split(separator)
        if column >= len(fields):
            return None
        return fields[column].strip().strip('"')
