"""The importers' exception (kept free of heavy imports: the CLI loads it at start)."""

from __future__ import annotations


class ImportFileError(Exception):
    """A file (or an import call) cannot be imported; the message names file, place and need."""


class NoSamplesError(ImportFileError):
    """A well-formed file that holds no samples (e.g. a spool segment of connection events)."""
