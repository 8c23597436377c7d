"""Energies and forces of labelled data sets: the potential against the reference.

:func:`evaluate_dataset` streams an n2p2 ``input.data`` (e.g. ``train.data`` /
``test.data`` written by ``hpcnnp train``, or an unseen set), evaluates every
structure with the potential and keeps, per structure, the reference and predicted
energy and forces with its structure class (:mod:`hpcnnp.validation.classes`).
:func:`error_table` turns a list of such sets into the per-class table of the
published format::

    class | N | energy RMSE / meV atom⁻¹ (R²) | force RMSE / eV Å⁻¹ (R²)

Energies are compared per atom (E/N, meV/atom), forces per Cartesian component
(eV/Å).  Every set also gets an ``all`` row over all its structures.

>>> from hpcnnp import Potential                                   # doctest: +SKIP
>>> pot = Potential.from_n2p2("pot")
>>> sets = [evaluate_dataset(pot, "train.data", "train"),
...         evaluate_dataset(pot, "test.data", "test")]
>>> print(error_table(sets).markdown())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError, InputFileError, StructureError
from hpcnnp.io import n2p2

from .classes import ClassResolver
from .metrics import ErrorStats, error_stats

__all__ = ["DataSetResult", "evaluate_dataset", "ErrorRow", "ErrorTable", "error_table",
           "ALL"]

#: name of the row over all classes of a set
ALL = "all"


@dataclass
class DataSetResult:
    """Reference and predicted energies/forces of one data set.

    Per structure (length n_structures): ``classes`` (str), ``index`` (0-based position
    in the file), ``n_atoms``, ``energy_ref`` / ``energy_ml`` (total energies, eV).
    Per atom (all structures concatenated): ``force_ref`` / ``force_ml`` (N, 3) in eV/Å
    and ``atom_structure`` (the structure row each atom belongs to).
    """

    name: str
    path: Path
    classes: list = field(default_factory=list)
    index: np.ndarray = None
    n_atoms: np.ndarray = None
    energy_ref: np.ndarray = None
    energy_ml: np.ndarray = None
    force_ref: np.ndarray = None
    force_ml: np.ndarray = None
    atom_structure: np.ndarray = None
    n_extrapolation_warnings: int = 0

    @property
    def n_structures(self):
        return len(self.classes)

    def class_names(self):
        """Classes in order of first appearance."""
        return list(dict.fromkeys(self.classes))

    def select(self, cls=None):
        """(structure mask, atom mask) of one class (None or :data:`ALL`: everything)."""
        if cls is None or cls == ALL:
            s = np.ones(self.n_structures, dtype=bool)
        else:
            s = np.array([c == cls for c in self.classes], dtype=bool)
        return s, s[self.atom_structure]

    def energy_per_atom(self, cls=None):
        """(reference, prediction) energies per atom in eV/atom of one class."""
        s, _ = self.select(cls)
        return self.energy_ref[s] / self.n_atoms[s], self.energy_ml[s] / self.n_atoms[s]

    def forces(self, cls=None):
        """(reference, prediction) force components in eV/Å (flat) of one class."""
        _, a = self.select(cls)
        return self.force_ref[a].ravel(), self.force_ml[a].ravel()


def evaluate_dataset(potential, path, name, resolver=None, progress=None):
    """Evaluate every structure of an n2p2 data file with ``potential``.

    Parameters
    ----------
    potential : hpcnnp.potential.Potential
    path : path
        n2p2 ``input.data`` with reference energies (eV) and forces (eV/Å).
    name : str
        Name of the set ("train", "test", "unseen", ...).
    resolver : ClassResolver, optional
        Assigns structure classes (default: ``info``/comment rules).
    progress : callable(n_done), optional
        Called after every structure.

    Returns
    -------
    DataSetResult
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, None, f"{name} data file not found")
    resolver = resolver or ClassResolver()
    out = DataSetResult(name=name, path=path)
    idx, nat, e_ref, e_ml, f_ref, f_ml, owner = [], [], [], [], [], [], []
    for k, atoms in enumerate(n2p2.iter_data(path, potential.elements)):
        try:
            res = potential.compute(atoms, forces=True, stress=False, structure_index=k)
        except StructureError as exc:
            line = atoms.info.get("n2p2_line")
            raise InputFileError(path, line, f"structure {k}: {exc}") from None
        out.classes.append(resolver(atoms))
        idx.append(atoms.info.get("n2p2_index", k))
        nat.append(len(atoms))
        e_ref.append(atoms.get_potential_energy())
        e_ml.append(res.energy)
        f_ref.append(np.asarray(atoms.get_forces(), dtype=float))
        f_ml.append(np.asarray(res.forces, dtype=float))
        owner.append(np.full(len(atoms), k, dtype=np.int64))
        out.n_extrapolation_warnings += int(res.n_warnings)
        if progress is not None:
            progress(k + 1)
    if not nat:
        raise InputFileError(path, None, f"{name} data file holds no structure")
    out.index = np.asarray(idx, dtype=np.int64)
    out.n_atoms = np.asarray(nat, dtype=np.int64)
    out.energy_ref = np.asarray(e_ref, dtype=float)
    out.energy_ml = np.asarray(e_ml, dtype=float)
    out.force_ref = np.concatenate(f_ref)
    out.force_ml = np.concatenate(f_ml)
    out.atom_structure = np.concatenate(owner)
    return out


@dataclass(frozen=True)
class ErrorRow:
    """Errors of one class in one set: energy in meV/atom, forces in eV/Å."""

    set: str
    cls: str
    n_structures: int
    n_atoms: int
    energy: ErrorStats
    forces: ErrorStats


def _fmt(value, digits):
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


class ErrorTable:
    """Per-class error rows of several sets (see :func:`error_table`)."""

    CSV_COLUMNS = ("set", "class", "n_structures", "n_atoms",
                   "energy_rmse_meV_per_atom", "energy_mae_meV_per_atom", "energy_r2",
                   "energy_max_abs_meV_per_atom",
                   "force_rmse_eV_per_A", "force_mae_eV_per_A", "force_r2",
                   "force_max_abs_eV_per_A", "n_force_components")

    def __init__(self, rows):
        self.rows = list(rows)

    def get(self, set_name, cls=ALL):
        """The row of one set and class (KeyError if absent)."""
        for r in self.rows:
            if r.set == set_name and r.cls == cls:
                return r
        raise KeyError(f"no row for set {set_name!r}, class {cls!r}")

    def sets(self):
        return list(dict.fromkeys(r.set for r in self.rows))

    def csv(self):
        """The table as CSV text (one row per set and class)."""
        lines = [",".join(self.CSV_COLUMNS)]
        for r in self.rows:
            e, f = r.energy, r.forces
            cls = r.cls if "," not in r.cls and '"' not in r.cls else \
                '"' + r.cls.replace('"', '""') + '"'
            vals = [r.set, cls, r.n_structures, r.n_atoms, e.rmse, e.mae, e.r2, e.max_abs,
                    f.rmse, f.mae, f.r2, f.max_abs, f.n]
            lines.append(",".join(v if isinstance(v, str) else
                                  (str(v) if isinstance(v, (int, np.integer))
                                   else f"{v:.6g}") for v in vals))
        return "\n".join(lines) + "\n"

    def markdown(self):
        """One Markdown table per set in the published format."""
        out = []
        for s in self.sets():
            out.append(f"**{s}**\n")
            out.append("| class | N structures | energy RMSE / meV atom⁻¹ (R²) "
                       "| force RMSE / eV Å⁻¹ (R²) |")
            out.append("|---|---:|---:|---:|")
            for r in self.rows:
                if r.set != s:
                    continue
                name = f"**{r.cls}**" if r.cls == ALL else r.cls
                out.append(f"| {name} | {r.n_structures} | "
                           f"{_fmt(r.energy.rmse, 2)} ({_fmt(r.energy.r2, 3)}) | "
                           f"{_fmt(r.forces.rmse, 3)} ({_fmt(r.forces.r2, 3)}) |")
            out.append("")
        return "\n".join(out)


def error_table(sets):
    """Per-class errors of every set, classes in order of first appearance.

    Parameters
    ----------
    sets : sequence of DataSetResult

    Returns
    -------
    ErrorTable
        Rows per set: every class of that set, then :data:`ALL`.
    """
    if not sets:
        raise HpcnnpError("no data set to compute errors for")
    order = list(dict.fromkeys(c for s in sets for c in s.class_names()))
    rows = []
    for s in sets:
        present = set(s.classes)
        for cls in [c for c in order if c in present] + [ALL]:
            mask, amask = s.select(cls)
            er, ep = s.energy_per_atom(cls)
            fr, fp = s.forces(cls)
            rows.append(ErrorRow(s.name, cls, int(mask.sum()), int(amask.sum()),
                                 error_stats(er, ep).scaled(1000.0), error_stats(fr, fp)))
    return ErrorTable(rows)
