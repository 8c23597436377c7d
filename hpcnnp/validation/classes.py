"""Which structure class a structure belongs to.

The per-class error table needs one class name per structure ("LLZO cubic",
"mixture #3", "interface LLZO(001)|LCO(104)", ...).  :class:`ClassResolver` finds
it, the first rule that applies winning:

1. a **mapping file** (CSV, header ``pattern,class``): the first row whose
   ``pattern`` -- a Python regular expression -- is found (``re.search``) in the
   structure's n2p2 ``comment`` gives the class;
2. ``atoms.info["structure_class"]`` (set by the builders of
   :mod:`hpcnnp.structures`);
3. a ``structure_class=...`` (or ``class=...``) entry in the ``comment``, quoted
   (``structure_class="LLZO cubic"``) or a single word; or the first field of the
   comments ``hpcnnp dataset export`` writes (``LLZO cubic | T=1273K | labeler=...``);
4. otherwise :data:`UNCLASSIFIED`.

Mapping file example::

    pattern,class
    ^llzo_cubic,LLZO cubic
    "Sigma ?5",GB Σ5
    amorph,amorphous LLZO
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

from hpcnnp.errors import InputFileError

__all__ = ["ClassResolver", "UNCLASSIFIED", "class_from_comment", "slugify"]

#: class of structures no rule applies to
UNCLASSIFIED = "unclassified"

_COMMENT_KEY = re.compile(
    r"""(?:^|[\s,;])(?:structure_class|class)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s,;]+))""")


#: comment written by ``hpcnnp dataset export``: "<class> | T=<K>K | labeler=... | ..."
_DATASET_COMMENT = re.compile(r"^\s*([^|]*?[^|\s])\s*\|\s*T=[0-9.]+\s*K\b")


def class_from_comment(comment):
    """The ``structure_class=``/``class=`` value of an n2p2 comment (or the class
    field of a ``hpcnnp dataset export`` comment), or None."""
    if not comment:
        return None
    m = _COMMENT_KEY.search(str(comment))
    if not m:
        m = _DATASET_COMMENT.match(str(comment))
        return m.group(1) if m else None
    value = next(g for g in m.groups() if g is not None).strip()
    return value or None


class ClassResolver:
    """Assign structure classes (see the module docstring for the rules).

    Parameters
    ----------
    mapping : path or list of (pattern, class), optional
        A CSV mapping file or the rules themselves.
    default : str
        Class of structures no rule applies to.
    """

    def __init__(self, mapping=None, default=UNCLASSIFIED):
        self.default = default
        self.source = None
        self.rules = []
        if mapping is None:
            return
        if isinstance(mapping, (str, Path)):
            self.source = Path(mapping)
            self.rules = self._read(self.source)
        else:
            for k, (pattern, name) in enumerate(mapping):
                try:
                    self.rules.append((re.compile(pattern), str(name)))
                except re.error as exc:
                    raise ValueError(f"class rule {k + 1}: bad pattern {pattern!r}: "
                                     f"{exc}") from None

    @staticmethod
    def _read(path):
        if not path.is_file():
            raise InputFileError(path, None, "class mapping file not found")
        rules = []
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        body = [(i + 1, r) for i, r in enumerate(rows)
                if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
        if not body:
            raise InputFileError(path, None, "empty class mapping (expected a header "
                                 "'pattern,class' and one row per rule)")
        line, header = body[0]
        if [c.strip().lower() for c in header[:2]] != ["pattern", "class"]:
            raise InputFileError(path, line, f"header must be 'pattern,class', got "
                                 f"{','.join(header)!r}")
        for line, row in body[1:]:
            if len(row) < 2 or not row[1].strip():
                raise InputFileError(path, line, "expected two columns: pattern,class")
            try:
                rules.append((re.compile(row[0]), row[1].strip()))
            except re.error as exc:
                raise InputFileError(path, line, f"bad regular expression "
                                     f"{row[0]!r}: {exc}") from None
        return rules

    def __call__(self, atoms):
        """The class name of one structure (ase.Atoms)."""
        comment = str(atoms.info.get("comment", ""))
        for pattern, name in self.rules:
            if pattern.search(comment):
                return name
        name = atoms.info.get("structure_class")
        if name:
            return str(name)
        return class_from_comment(comment) or self.default


_GREEK = {"Σ": "Sigma", "σ": "sigma", "α": "alpha", "β": "beta", "γ": "gamma"}


def slugify(name):
    """A file-name-safe form of a class name ("GB Σ5(310)" -> "GB_Sigma5_310")."""
    text = "".join(_GREEK.get(ch, ch) for ch in str(name))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_.")
    return text or "class"
