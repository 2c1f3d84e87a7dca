"""The first bytes of a file, for recognising its format from content.

Text formats are recognised from their first complete lines (a CSV header, a preamble); JSON
formats from the structure at the start of the text (``{"Meas":{"IMU9":[{"ArrayAcc":...``), which
needs no complete line: a Movesense DataLogger export is one line of several megabytes, far
longer than the head that is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 64 * 1024
#: a JSON object key, as the structure sniffers look for them
_KEY = re.compile(r'"([^"\\]{1,64})"\s*:')


@dataclass(frozen=True)
class Head:
    """The start of a file: raw bytes and, if it is text, its first complete lines."""

    path: Path
    raw: bytes
    lines: tuple[str, ...]
    #: the decoded head, including a last line the byte limit may have cut
    text: str = ""
    #: True when the file is longer than the head
    cut: bool = False

    @classmethod
    def read(cls, path: Path) -> Head:
        with open(path, "rb") as fh:
            raw = fh.read(HEAD_BYTES)
            cut = bool(fh.read(1))
        text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
        lines = text.splitlines()
        if cut and lines and not text.endswith(("\n", "\r")):
            lines = lines[:-1]  # the last line is cut by the byte limit
        return cls(path=path, raw=raw, lines=tuple(lines), text=text, cut=cut)

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

    def json_keys(self) -> list[str]:
        """Object keys in the head's text, in order, if the text starts like JSON (else [])."""
        start = self.text.lstrip()
        if not start.startswith(("{", "[")):
            return []
        return _KEY.findall(start)
