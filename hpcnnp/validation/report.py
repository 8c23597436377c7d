"""Small helpers to write the validation outputs: atomic text/CSV files and Markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpcnnp.fileio import write_atomic

__all__ = ["write_text", "write_csv", "csv_text", "md_table", "fmt"]


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (temporary file + rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return path


def _cell(v):
    if isinstance(v, str):
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n') else v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if v is None:
        return ""
    return f"{float(v):.8g}"


def csv_text(header, rows):
    """CSV text of a header and rows (numbers with 8 significant digits)."""
    lines = [",".join(_cell(h) for h in header)]
    lines += [",".join(_cell(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path, header, rows):
    """Write a CSV file atomically."""
    return write_text(path, csv_text(header, rows))


def write_columns(path, columns):
    """Write equally long arrays as CSV columns; ``columns`` is a dict name -> array."""
    names = list(columns)
    arrays = [np.asarray(columns[n]) for n in names]
    return write_csv(path, names, zip(*arrays))


def fmt(value, spec=".3g", missing="n/a"):
    """Format a number, NaN/None as ``missing``."""
    if value is None:
        return missing
    try:
        if not np.isfinite(value):
            return missing
    except TypeError:
        return str(value)
    return format(value, spec)


def md_table(header, rows, align=None):
    """A Markdown table; ``align`` is a string of 'l'/'r' per column (default: l then r)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"
