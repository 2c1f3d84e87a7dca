"""Identifiers that become paths: the participant-ID rule and the device-id folder names.

A participant id names folders (``participant_id=<P>``), report files (``<P>-<date>.html``) and
rows; it is checked, never cleaned up: :func:`check_participant_id` accepts 1 to 64 ASCII letters,
digits, ``_`` and ``-``, starting with a letter or digit (case-sensitive), and rejects anything
else with the reason. ``P 01`` is refused rather than turned into ``P-01``, so two participants can
never share a folder. Every path built from a participant id goes through
:func:`participant_component`.

A device id is what the device or a file calls itself (a BLE address such as
``A0:9E:1A:12:34:56``, a name, a serial). :func:`device_component` turns it into a folder or file
name one-to-one: a BLE address keeps its readable form (``A0-9E-1A-12-34-56``), a plain name stays
as it is, and anything else has its other characters escaped (``~XX`` per UTF-8 byte), so two
different device ids never map to one name.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "PARTICIPANT_ID_RULE",
    "InvalidIdError",
    "check_component",
    "check_participant_id",
    "device_component",
    "participant_component",
]

#: the participant-ID rule (docs/storage.md, "Security")
PARTICIPANT_ID_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_RULE_TEXT = (
    "1-64 letters, digits, '_' or '-', starting with a letter or digit (e.g. P01); "
    "no spaces, '/', '.', or other characters"
)
_BLE_ADDRESS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_DASHED_ADDRESS = re.compile(r"[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}")
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
#: the characters of every name this module produces (``~`` only in escaped names)
_COMPONENT = re.compile(r"[A-Za-z0-9_~][A-Za-z0-9_.~-]*")
#: longest folder or file name built from a device id (file systems allow 255 bytes)
MAX_COMPONENT_CHARS = 160


class InvalidIdError(ValueError):
    """An identifier that cannot be used (names it and the rule it breaks)."""


def check_participant_id(participant_id: object) -> str:
    """Return ``participant_id`` if it follows the participant-ID rule, else raise.

    Parameters
    ----------
    participant_id : str
        The id as typed or passed.

    Returns
    -------
    str
        The same id, unchanged.

    Raises
    ------
    InvalidIdError
        If it is not a string of 1-64 ASCII letters, digits, ``_`` and ``-`` starting with a
        letter or digit.

    Examples
    --------
    >>> check_participant_id("P01")
    'P01'
    >>> check_participant_id("../x")
    Traceback (most recent call last):
    ...
    glutewake.store.ids.InvalidIdError: participant id '../x' is not valid: 1-64 letters, ...
    """
    if not isinstance(participant_id, str) or PARTICIPANT_ID_RULE.fullmatch(participant_id) is None:
        shown = repr(participant_id) if len(repr(participant_id)) <= 80 else "(too long)"
        raise InvalidIdError(f"participant id {shown} is not valid: {_RULE_TEXT}")
    return participant_id


def participant_component(participant_id: str) -> str:
    """The folder or file-name part for a participant: the checked id itself.

    Raises
    ------
    InvalidIdError
        See :func:`check_participant_id`.
    """
    return check_participant_id(participant_id)


def _escape(char: str) -> str:
    return "".join(f"~{byte:02X}" for byte in char.encode("utf-8"))


def device_component(device_id: str) -> str:
    """Turn a device id into a folder or file name, one-to-one.

    Raises
    ------
    InvalidIdError
        For an empty id. An id whose name would be longer than :data:`MAX_COMPONENT_CHARS`
        keeps its start and gains a 128-bit digest of the whole id.

    Examples
    --------
    >>> device_component("A0:9E:1A:12:34:56")
    'A0-9E-1A-12-34-56'
    >>> device_component("import-generic-csv")
    'import-generic-csv'
    >>> device_component("Polar Sense/1")
    'Polar~20Sense~2F1'
    """
    if not isinstance(device_id, str) or not device_id:
        raise InvalidIdError(f"device id {device_id!r} is empty or not text")
    if _BLE_ADDRESS.fullmatch(device_id):
        name = device_id.replace(":", "-")
    elif _PLAIN.fullmatch(device_id) and not _DASHED_ADDRESS.fullmatch(device_id):
        name = device_id
    else:
        # a dashed address given as it is would meet the colon form's name: escape its dashes
        unsafe = re.compile(r"[^A-Za-z0-9_.]") if _DASHED_ADDRESS.fullmatch(device_id) else None
        pattern = unsafe or _UNSAFE_CHAR
        name = pattern.sub(lambda m: _escape(m.group(0)), device_id)
        if name[0] in ".-":  # never a hidden file, '.', '..' or an option-like name
            name = _escape(name[0]) + name[1:]
    if len(name) > MAX_COMPONENT_CHARS:
        # a name too long for a file system: its start and a digest of the whole id ("~~"
        # occurs in no other name: an escape is always "~" and two hex digits)
        digest = hashlib.sha256(device_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        head = name[: MAX_COMPONENT_CHARS - 34]
        head = head[: head.rfind("~")] if "~" in head[-2:] else head  # no torn escape
        name = f"{head}~~{digest}"
    return name


def check_component(name: str) -> str:
    """Return ``name`` if it is one safe path component made by this module, else raise.

    For names assembled from :func:`device_component` and :func:`participant_component` output
    (``<device>-c<conn>-<stream>``): no separators, no leading dot, nothing to escape.
    """
    if not isinstance(name, str) or _COMPONENT.fullmatch(name) is None:
        raise InvalidIdError(f"{name!r} is not a safe file name")
    if len(name) > MAX_COMPONENT_CHARS + 40:
        raise InvalidIdError(f"file name {name[:40]!r}... is too long")
    return name
