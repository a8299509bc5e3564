"""The records a ``workhorse map`` job reads: JSON Lines, CSV, or one value per line.

The whole input is read and checked before anything runs, so a malformed line stops the job
before it starts (with its line number), never after half of it ran. Each record keeps its
text as read (``source``): the journal stores it, and a resumed job's input must match it
record for record (a journal never continues a different job).

Example::

    records = read_records("items.jsonl")
    records[0].key, records[0].value     # ("1", {"n": 3})
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "InputError", "Record", "guess_format", "read_records"]

FORMATS = ("jsonl", "csv", "lines")


class InputError(ValueError):
    """The input cannot be read as asked (its message names the file and the line)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One input record: its key (``--key`` field, else its 1-based number), the value the
    function is called with, and its text as read."""

    key: str
    value: Any
    source: str


def guess_format(path: str) -> str:
    """The format of ``path`` by its extension: ``.jsonl``/``.ndjson``/``.json`` are JSON
    Lines, ``.csv`` is CSV, anything else (and ``-``) one value per line."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "lines"


def read_records(path: str, fmt: str | None = None, key: str | None = None) -> list[Record]:
    """Every record of ``path`` (``-``: standard input) in ``fmt`` (default: by extension);
    ``key``: the field (JSON objects, CSV columns) naming each record."""
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown input format {fmt!r}: choose one of {', '.join(FORMATS)}")
    where = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"input {where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"input {where}: cannot be read: {exc}") from None
    if fmt == "csv":
        return _csv(text, where, key)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines separate nothing: skipped (their numbers still count)
        if fmt == "lines":
            value: Any = line
        else:
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"input {where}, line {number}: not JSON: {exc.msg}") from None
        records.append(Record(_key(value, key, number, where), value, line))
    return records


def _csv(text: str, where: str, key: str | None) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        return []
    if key is not None and key not in reader.fieldnames:
        raise InputError(f"input {where}: no column {key!r} for --key (it has {reader.fieldnames})")
    records = []
    for row in reader:
        if None in row:  # more cells than the header names
            raise InputError(f"input {where}, line {reader.line_num}: more cells than columns")
        source = json.dumps(row, sort_keys=True)
        records.append(Record(_key(row, key, reader.line_num, where), row, source))
    return records


def _key(value: Any, key: str | None, number: int, where: str) -> str:
    if key is None:
        return str(number)
    if not isinstance(value, dict) or key not in value:
        raise InputError(f"input {where}, line {number}: no field {key!r} for --key")
    return str(value[key])
