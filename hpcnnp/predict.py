"""Predict a whole data set with an HDNNP, writing n2p2's output files.

This is the library behind ``hpcnnp predict``; it combines n2p2's ``nnp-dataset``
(all structures: ``energy.comp``, ``forces.comp``, ``output.data`` and the error
metrics of its log) and ``nnp-predict`` (per structure: ``energy.out``,
``nnatoms.out``, ``nnforces.out``) in one streaming pass over an ``input.data``
(n2p2-formats.md §1, §9, §13).

>>> from hpcnnp.predict import predict_dataset                   # doctest: +SKIP
>>> summary = predict_dataset("pot_dir", "input.data", "out_dir", per_structure=True)
>>> summary.energy_errors["RMSEpa"], summary.extrapolation.n_warnings

Faithfulness to n2p2
--------------------
Every *reference* number n2p2 prints went through n2p2's own arithmetic (wrapping of
periodic positions into the cell, removal and re-addition of the ``atom_energy``
offsets, conversion to the normalised units of ``mean_energy``/``conv_energy``/
``conv_length`` and back); :class:`N2p2Structure` repeats that arithmetic operation by
operation, so these columns (positions, lattice, ``Eref``, ``fRef`` ...) come out
bit-identical to n2p2's files.  n2p2's default build (``-O3 -march=native`` on an
FMA-capable x86-64, as for ``shared/refdata``) lets GCC contract ``a*b + c`` into fused
multiply-adds; the emulation does the same (``contract=True``, correctly rounded
:func:`fma`).  The *NNP* numbers (energies, forces) are hpcnnp's own and agree with
n2p2's to ~1e-15 relative (the last of the 17 printed digits may differ).

Output conventions (all as n2p2 writes them)
--------------------------------------------
* ``energy.comp``/``forces.comp``: structure and atom indices 0-based; 4 columns
  (physical units, offsets included) or 6 with normalisation (+ internal units).
* ``output.data``: ``begin``/``comment``/``lattice``/``atom``/``energy``/``charge``/
  ``end`` with ``%24.16E``; positions wrapped into the cell (periodic structures);
  NNP energy (with offsets) and NNP forces; atomic and total charges are the NNP
  charges, i.e. 0.0 for a short-range (2G) HDNNP; a ``set=`` tag of ``begin`` is not
  written; the ``comment`` line is always written (empty text if the input had none).
* ``energy.out``/``nnatoms.out``/``nnforces.out``: nnp-predict's formats, one line per
  structure/atom, all structures in one file; the ``conf`` column is the 1-based
  structure index in ``input.data`` (nnp-predict reads only one structure and always
  writes 1).
* ``extrapolation.csv`` (hpcnnp's own): ``structure,atom,element,sf,type,value,min,max``
  with the indices of n2p2's ``### NNP EXTRAPOLATION WARNING ###`` lines: structure
  and atom 0-based (as in ``energy.comp``/``forces.comp``), sorted SF index 1-based;
  value/min/max at full precision.

Every file is written to a temporary file in the output folder and moved into place
only when the whole data set has been evaluated: a failure (bad input, interrupt)
leaves the previous files untouched and no partial file behind.
"""

from __future__ import annotations

import csv
import math
import os
import re
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError, InputFileError, StructureError

__all__ = [
    "predict_dataset", "PredictionSummary", "ExtrapolationSummary", "ErrorMetrics",
    "N2p2Structure", "count_structures", "file_header", "fma",
    "n2p2_inverse_box", "n2p2_remap", "OUTPUT_FILES", "PER_STRUCTURE_FILES",
    "EXTRAPOLATION_FILE",
]

#: files written by every run (forces.comp only when forces are predicted)
OUTPUT_FILES = ("energy.comp", "forces.comp", "output.data")
#: files written with ``per_structure=True`` (nnp-predict's)
PER_STRUCTURE_FILES = ("energy.out", "nnatoms.out", "nnforces.out")
#: all extrapolation warnings, CSV
EXTRAPOLATION_FILE = "extrapolation.csv"


# ---------------------------------------------------------------------------------------
# Correctly rounded fused multiply-add (Python < 3.13 has no math.fma)
# ---------------------------------------------------------------------------------------
#
# Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
# using rounding to odd", IEEE Trans. Comput. 57, 462 (2008): with the exact product
# a*b = uh + ul (Dekker/Veltkamp) and c + uh = th + tl (Knuth's TwoSum),
# RN(th + RO(tl + ul)) is the correctly rounded a*b + c (no overflow/underflow).

_SPLITTER = 134217729.0          # 2**27 + 1


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a, b):
    p = a * b
    c = _SPLITTER * a
    ah = c - (c - a)
    al = a - ah
    c = _SPLITTER * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fma_scalar(a, b, c):
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, uh)
    v, e = _two_sum(tl, ul)
    if e != 0.0 and not struct.unpack("<q", struct.pack("<d", v))[0] & 1:
        v = math.nextafter(v, math.inf if e > 0.0 else -math.inf)
    return th + v


def fma(a, b, c):
    """Correctly rounded ``a*b + c`` (one rounding), for floats or numpy arrays.

    Exact as long as nothing overflows and ``a*b`` is not subnormal (always the case
    for positions, cells and energies).
    """
    if all(isinstance(x, float) for x in (a, b, c)):
        return _fma_scalar(a, b, c)
    a, b, c = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (a, b, c)))
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, uh)
    v, e = _two_sum(tl, ul)
    even = (v.view(np.int64) & 1) == 0
    v = np.where((e != 0.0) & even, np.nextafter(v, np.where(e > 0.0, np.inf, -np.inf)), v)
    return th + v


def _madd(a, b, c, contract):
    """``a*b + c`` as n2p2 computes it (fused when compiled with FMA contraction)."""
    return fma(a, b, c) if contract else a * b + c


# ---------------------------------------------------------------------------------------
# n2p2's structure arithmetic
# ---------------------------------------------------------------------------------------

def n2p2_inverse_box(cell, contract=True):
    """n2p2's ``Structure::calculateInverseBox`` (rows of ``cell`` = lattice vectors).

    Returns the (3, 3) inverse with n2p2's operation order (cofactors ``a*b - c*d``,
    a determinant from six triple products), so that :func:`n2p2_remap` reproduces
    n2p2's wrapped positions bit for bit.
    """
    b = [[float(x) for x in row] for row in np.asarray(cell, dtype=float)]

    def cof(p, q, r, s):                        # p*q - r*s
        return _madd(-r, s, p * q, contract)

    t = [(b[0][0] * b[1][1], b[2][2], 1.0), (b[1][0] * b[2][1], b[0][2], 1.0),
         (b[2][0] * b[0][1], b[1][2], 1.0), (b[2][0] * b[1][1], b[0][2], -1.0),
         (b[0][0] * b[2][1], b[1][2], -1.0), (b[1][0] * b[0][1], b[2][2], -1.0)]
    det = t[0][0] * t[0][1]
    for m, z, sign in t[1:]:
        det = _madd(sign * m, z, det, contract)
    inv = 1.0 / det
    ib = [[cof(b[1][1], b[2][2], b[2][1], b[1][2]), cof(b[2][1], b[0][2], b[0][1], b[2][2]),
           cof(b[0][1], b[1][2], b[1][1], b[0][2])],
          [cof(b[2][0], b[1][2], b[1][0], b[2][2]), cof(b[0][0], b[2][2], b[2][0], b[0][2]),
           cof(b[1][0], b[0][2], b[0][0], b[1][2])],
          [cof(b[1][0], b[2][1], b[2][0], b[1][1]), cof(b[2][0], b[0][1], b[0][0], b[2][1]),
           cof(b[0][0], b[1][1], b[1][0], b[0][1])]]
    return np.array(ib) * inv


def _combine(coef, vectors, contract):
    """sum_k coef[:, k] * vectors[k] in n2p2's order ((c0 v0 + c1 v1) + c2 v2)."""
    v = np.asarray(vectors, dtype=float)
    out = coef[:, 0:1] * v[0]
    out = _madd(coef[:, 1:2], v[1], out, contract)
    return _madd(coef[:, 2:3], v[2], out, contract)


def n2p2_remap(positions, cell, contract=True):
    """Wrap positions into the cell exactly as n2p2's ``Structure::remap`` does.

    Fractional coordinates f = r · invbox are mapped to [0, 1) (``f -= (int) f`` above
    1, ``f += 1 - (int) f`` below 0, 1 -> 0) and converted back, r = f · box.
    """
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    if len(pos) == 0:
        return pos.copy()
    frac = _combine(pos, n2p2_inverse_box(cell, contract), contract)
    frac = np.where(frac > 1.0, frac - np.trunc(frac), frac)
    frac = np.where(frac < 0.0, frac + (1.0 - np.trunc(frac)), frac)
    frac = np.where(frac == 1.0, 0.0, frac)
    return _combine(frac, np.asarray(cell, dtype=float), contract)


@dataclass
class N2p2Structure:
    """One structure of ``input.data`` after n2p2's reading and unit round trip.

    Built by :meth:`from_atoms`; the attributes are what n2p2 prints as reference
    values (physical units unless named ``*_int``).

    Attributes
    ----------
    index : int
        0-based structure index in the file.
    symbols : list of str
    numbers : ndarray (N,) of int
    periodic : bool
    positions : ndarray (N, 3)
        Wrapped into the cell (periodic), as the NNP is evaluated.
    positions_out, cell_out : ndarray
        As n2p2 writes them (after the round trip through normalised units).
    cell : ndarray (3, 3)
    comment : str
    charges_ref : ndarray (N,)
        Atomic reference charges (column 5 of the atom lines).
    energy_ref_int : float
        Reference energy without offsets in internal units (= physical without
        normalisation).
    energy_ref_predict : float
        Reference energy as nnp-predict prints it (``energy.out``, offsets added).
    energy_ref_dataset : float
        Reference energy as nnp-dataset prints it (``energy.comp``, offsets added).
    offset : float
        Sum of the atomic energy offsets (``E_offset``).
    forces_ref, forces_ref_int : ndarray (N, 3)
        Reference forces (physical after the round trip; internal units).
    """

    index: int
    line: int
    symbols: list
    numbers: np.ndarray
    periodic: bool
    positions: np.ndarray
    positions_out: np.ndarray
    cell: np.ndarray
    cell_out: np.ndarray
    comment: str
    charges_ref: np.ndarray
    energy_ref_int: float
    energy_ref_predict: float
    energy_ref_dataset: float
    offset: float
    forces_ref: np.ndarray
    forces_ref_int: np.ndarray

    @classmethod
    def from_atoms(cls, atoms, potential, index=None, contract=True):
        """Prepare an :class:`ase.Atoms` from :func:`hpcnnp.io.n2p2.iter_data`.

        ``potential`` supplies elements, ``atom_energy`` offsets and normalisation.
        """
        info = atoms.info
        index = info.get("n2p2_index", 0) if index is None else index
        symbols = atoms.get_chemical_symbols()
        n = len(symbols)
        periodic = bool(np.asarray(atoms.get_pbc()).all())
        pos = np.array(atoms.get_positions(), dtype=float)
        cell = np.array(atoms.get_cell(), dtype=float)
        if periodic:
            pos = n2p2_remap(pos, cell, contract)
        results = getattr(atoms.calc, "results", None) or {}
        e_file = float(results.get("energy", 0.0) or 0.0)
        f_file = results.get("forces")
        f_file = np.zeros((n, 3)) if f_file is None else np.array(f_file, dtype=float)

        counts = Counter(symbols)
        offsets = [(float(counts.get(el, 0)), potential.atom_energy[el])
                   for el in potential.elements]
        e_ref = e_file                                  # removeEnergyOffset
        for cnt, off in offsets:
            e_ref = _madd(-cnt, off, e_ref, contract)
        offset = 0.0                                    # getEnergyOffset
        for cnt, off in offsets:
            offset = _madd(cnt, off, offset, contract)

        norm = potential.settings.normalization
        pos_out, cell_out, f_ref, f_int = pos, cell, f_file, f_file
        if norm:
            mu, c_e, c_l = norm
            e_int = _madd(-float(n), mu, e_ref, contract) * c_e
            e_phys = _madd(float(n), mu, e_int / c_e, contract)
            a = c_e / c_l
            f_int = f_file * a
            f_ref = f_int * (1.0 / a)
            pos_out = (pos * c_l) * (1.0 / c_l)
            cell_out = (cell * c_l) * (1.0 / c_l) if periodic else cell
            e_dataset = e_phys + offset
        else:
            e_int = e_phys = e_ref
            e_dataset = None
        e_predict = e_phys                              # addEnergyOffset(ref)
        for cnt, off in offsets:
            e_predict = _madd(cnt, off, e_predict, contract)
        if e_dataset is None:                           # getEnergyWithOffset
            e_dataset = e_predict
        return cls(index=index, line=info.get("n2p2_line", 0), symbols=symbols,
                   numbers=np.asarray(atoms.get_atomic_numbers()), periodic=periodic,
                   positions=pos, positions_out=pos_out, cell=cell, cell_out=cell_out,
                   comment=str(info.get("comment", "")),
                   charges_ref=np.asarray(atoms.get_initial_charges(), dtype=float),
                   energy_ref_int=e_int, energy_ref_predict=e_predict,
                   energy_ref_dataset=e_dataset, offset=offset,
                   forces_ref=f_ref, forces_ref_int=f_int)

    def atoms(self):
        """The structure to evaluate (:class:`ase.Atoms`, wrapped positions)."""
        from ase import Atoms
        return Atoms(symbols=self.symbols, positions=self.positions,
                     cell=self.cell if self.periodic else np.zeros((3, 3)),
                     pbc=self.periodic)


# ---------------------------------------------------------------------------------------
# n2p2 file headers and lines
# ---------------------------------------------------------------------------------------

def file_header(title, columns):
    """n2p2's ``createFileHeader``: ``columns`` = [(width, name, description), ...]."""
    sep = "#" * 80 + "\n"
    out = [sep] + [f"# {t}\n" for t in ([title] if isinstance(title, str) else title)]
    out.append(sep)
    width_names = max(len(name) for _, name, _ in columns)
    out.append(f"# {'Col':<4} {'Name':<{width_names}} Description\n")
    out.append(sep)
    for i, (_, name, info) in enumerate(columns, start=1):
        out.append(f"# {i:<4} {name:<{width_names}} {info}\n")
    width_data = sum(w + 1 for w, _, _ in columns) - 1
    out.append("#" * width_data + "\n" if width_data > 80 else sep)
    numbers, names = ["#"], ["#"]
    for i, (w, name, _) in enumerate(columns):
        n = w - 2 if i == 0 else w
        numbers.append(f" {i + 1:>{n}}")
        names.append(f" {name[:n]:>{n}}")
    out.append("".join(numbers) + "\n")
    out.append("".join(names) + "\n")
    out.append("#" * width_data + "\n")
    return "".join(out)


def energy_comp_header(normalized):
    cols = [(10, "index", "Structure index."),
            (10, "N", "Number of atoms in structure."),
            (16, "Eref_phys", "Reference potential energy (physical units, atomic energy "
                              "offsets added)."),
            (16, "Ennp_phys", "NNP potential energy (physical units, atomic energy "
                              "offsets added).")]
    if normalized:
        cols += [(16, "Eref_int", "Reference potential energy (internal units)."),
                 (16, "Ennp_int", "NNP potential energy (internal units).")]
    return file_header("Energy comparison.", cols)


def forces_comp_header(normalized):
    cols = [(10, "index_s", "Structure index."),
            (10, "index_a", "Atom index (x, y, z components in consecutive lines)."),
            (16, "Fref_phys", "Reference force (physical units)."),
            (16, "Fnnp_phys", "NNP force (physical units).")]
    if normalized:
        cols += [(16, "Fref_int", "Reference force (internal units)."),
                 (16, "Fnnp_int", "NNP force (internal units).")]
    return file_header("Force comparison.", cols)


_CONF = (10, "conf", "Configuration index (starting with 1).")


def energy_out_header():
    return file_header("Energy comparison.", [
        _CONF, (10, "natoms", "Number of atoms in configuration."),
        (24, "Eref", "Reference potential energy."),
        (24, "Ennp", "Potential energy predicted by NNP."),
        (24, "Ediff", "Difference in energy per atom between reference and NNP "
                      "prediction."),
        (24, "E_offset", "Sum of atomic offset energies (included in column Ennp).")])


def nnatoms_out_header():
    return file_header("Energy contributions calculated from NNP.", [
        _CONF, (10, "index", "Atom index (starting with 1)."),
        (3, "Z", "Nuclear charge of atom."),
        (24, "Qref", "Reference atomic charge."), (24, "Qnnp", "NNP atomic charge."),
        (24, "Eref_atom", "Reference atomic energy contribution."),
        (24, "Ennp_atom", "Atomic energy contribution (physical units, no mean or "
                          "offset energy added).")])


def nnforces_out_header():
    return file_header("Atomic force comparison (ordered by atom index).", [
        _CONF, (10, "index", "Atom index (starting with 1)."),
        (24, "fxRef", "Reference force in x direction."),
        (24, "fyRef", "Reference force in y direction."),
        (24, "fzRef", "Reference force in z direction."),
        (24, "fx", "Force in x direction."), (24, "fy", "Force in y direction."),
        (24, "fz", "Force in z direction.")])


_ATOM_LINE = ("atom %24.16E %24.16E %24.16E %2s %24.16E %24.16E %24.16E %24.16E "
              "%24.16E\n")


def format_output_structure(s: N2p2Structure, energy, forces, charges=None):
    """One structure in n2p2's ``Structure::writeToFile`` format (NNP values)."""
    n = len(s.symbols)
    forces = np.zeros((n, 3)) if forces is None else np.asarray(forces, dtype=float)
    charges = np.zeros(n) if charges is None else np.asarray(charges, dtype=float)
    out = ["begin\n", f"comment {s.comment}\n"]
    if s.periodic:
        out += ["lattice %24.16E %24.16E %24.16E\n" % tuple(v) for v in s.cell_out.tolist()]
    out += [_ATOM_LINE % (r[0], r[1], r[2], el, q, 0.0, f[0], f[1], f[2])
            for r, el, q, f in zip(s.positions_out.tolist(), s.symbols, charges.tolist(),
                                   forces.tolist())]
    out.append("energy %24.16E\n" % energy)
    out.append("charge %24.16E\n" % float(charges.sum()))
    out.append("end\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Error metrics (n2p2's Structure::updateError / Dataset::collectError)
# ---------------------------------------------------------------------------------------

class ErrorMetrics:
    """Running RMSE/MAE of energies (total and per atom) and force components.

    Energies are compared without the atom_energy offsets; values are kept in physical
    units (``conv_energy``/``conv_length`` give the internal ones, as in n2p2's log).
    """

    def __init__(self, normalization=None):
        self.normalization = normalization
        self.n_energy = 0
        self.n_force = 0
        self._e = dict(RMSEpa=0.0, RMSE=0.0, MAEpa=0.0, MAE=0.0)
        self._f = dict(RMSE=0.0, MAE=0.0)

    def add_energy(self, e_ref, e_nnp, n_atoms):
        d = e_ref - e_nnp
        self.n_energy += 1
        self._e["RMSEpa"] += d * d / (n_atoms * n_atoms)
        self._e["RMSE"] += d * d
        self._e["MAEpa"] += abs(d) / n_atoms
        self._e["MAE"] += abs(d)

    def add_forces(self, f_ref, f_nnp):
        d = (np.asarray(f_ref, dtype=float) - np.asarray(f_nnp, dtype=float)).ravel()
        self.n_force += d.size
        self._f["RMSE"] += float(d @ d)
        self._f["MAE"] += float(np.abs(d).sum())

    def energy(self, internal=False):
        """dict RMSEpa, RMSE, MAEpa, MAE (NaN without structures)."""
        n = self.n_energy
        res = {k: (math.sqrt(v / n) if k.startswith("RMSE") else v / n) if n else math.nan
               for k, v in self._e.items()}
        if internal and self.normalization:
            res = {k: v * self.normalization[1] for k, v in res.items()}
        return res

    def forces(self, internal=False):
        """dict RMSE, MAE of the force components (NaN without forces)."""
        n = self.n_force
        res = {"RMSE": math.sqrt(self._f["RMSE"] / n) if n else math.nan,
               "MAE": self._f["MAE"] / n if n else math.nan}
        if internal and self.normalization:
            _, c_e, c_l = self.normalization
            res = {k: v * (c_e / c_l) for k, v in res.items()}
        return res

    def table(self, forces=True):
        """The error block of nnp-dataset's log (physical | internal units)."""
        norm = bool(self.normalization)
        dash = "-" * 120
        lines = [dash, "                      physical units                          "
                 + (" |                    internal units                            "
                    if norm else "")]
        head = "       %13s %13s %13s %13s" % ("RMSEpa", "RMSE", "MAEpa", "MAE")
        if norm:
            head += " | %13s %13s %13s %13s" % ("RMSEpa", "RMSE", "MAEpa", "MAE")
        lines.append(head)
        keys = ("RMSEpa", "RMSE", "MAEpa", "MAE")
        row = "ENERGY" + " %13.5E %13.5E %13.5E %13.5E" % tuple(self.energy()[k] for k in keys)
        if norm:
            row += " |" + " %13.5E %13.5E %13.5E %13.5E" % tuple(
                self.energy(True)[k] for k in keys)
        lines.append(row)
        if forces and self.n_force:
            f, fi = self.forces(), self.forces(True)
            row = "FORCES" + " %13s %13.5E %13s %13.5E" % ("", f["RMSE"], "", f["MAE"])
            if norm:
                row += " |" + " %13s %13.5E %13s %13.5E" % ("", fi["RMSE"], "", fi["MAE"])
            lines.append(row)
        lines.append(dash)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Extrapolation warnings
# ---------------------------------------------------------------------------------------

class ExtrapolationSummary:
    """Counts of extrapolation warnings (SF values outside the scaling range)."""

    def __init__(self):
        self.n_warnings = 0
        self.n_structures = 0               # structures with at least one warning
        self.n_atoms = 0                    # atoms with at least one warning
        self.per_element = Counter()        # element -> warnings
        self.atoms_per_element = Counter()  # element -> atoms with warnings
        self.per_sf = Counter()             # (element, sf, type) -> warnings
        self.below = 0
        self.above = 0

    def add(self, warnings):
        """Add the (complete) warnings of one structure."""
        if not warnings:
            return
        self.n_warnings += len(warnings)
        self.n_structures += 1
        atoms = {}
        for w in warnings:
            self.per_element[w.element] += 1
            self.per_sf[(w.element, w.sf, w.sf_type)] += 1
            atoms[w.atom] = w.element
            if w.value < w.min:
                self.below += 1
            else:
                self.above += 1
        self.n_atoms += len(atoms)
        self.atoms_per_element.update(atoms.values())

    def table(self, elements=None, top=10):
        """Human-readable summary (per element, the ``top`` SFs, affected counts)."""
        if not self.n_warnings:
            return "Extrapolation warnings: none"
        els = [e for e in (elements or sorted(self.per_element)) if self.per_element[e]]
        lines = [f"Extrapolation warnings: {self.n_warnings} ({self.below} below min, "
                 f"{self.above} above max) in {self.n_structures} structure(s), "
                 f"{self.n_atoms} atom(s)",
                 "  element  warnings     atoms"]
        lines += [f"  {el:>7} {self.per_element[el]:9d} {self.atoms_per_element[el]:9d}"
                  for el in els]
        lines.append(f"  top {min(top, len(self.per_sf))} symmetry functions "
                     "(element, sorted SF index, type):")
        lines.append("  element    sf  type  warnings")
        for (el, sf, t), n in sorted(self.per_sf.items(),
                                     key=lambda kv: (-kv[1], kv[0]))[:top]:
            lines.append(f"  {el:>7} {sf:5d} {t:5d} {n:9d}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Structure counting
# ---------------------------------------------------------------------------------------

_BEGIN_RE = re.compile(rb"^[ \t]*begin(?=[ \t\r\n]|$)", re.MULTILINE)


def count_structures(path, chunk_size=1 << 24):
    """Number of ``begin`` lines of an ``input.data`` (fast, no parsing)."""
    count = 0
    tail = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_size)
            if not chunk:
                break
            block = tail + chunk
            cut = block.rfind(b"\n") + 1
            count += len(_BEGIN_RE.findall(block, 0, cut))
            tail = block[cut:]
    if tail:
        count += len(_BEGIN_RE.findall(tail))
    return count


# ---------------------------------------------------------------------------------------
# Atomic output files
# ---------------------------------------------------------------------------------------

class _AtomicFiles:
    """Temporary files in ``folder``, renamed to their names by :meth:`commit`."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.files = {}                     # name -> (tmp path, file object)

    def open(self, name):
        tmp = self.folder / f".{name}.tmp.{os.getpid()}.{os.urandom(4).hex()}"
        fh = open(tmp, "x", encoding="utf-8", newline="\n")
        self.files[name] = (tmp, fh)
        return fh

    def commit(self):
        for name, (tmp, fh) in self.files.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        for name, (tmp, _) in self.files.items():
            os.replace(tmp, self.folder / name)
        self.files = {}

    def abort(self):
        for tmp, fh in self.files.values():
            try:
                fh.close()
            finally:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
        self.files = {}


# ---------------------------------------------------------------------------------------
# The data-set prediction
# ---------------------------------------------------------------------------------------

@dataclass
class PredictionSummary:
    """What :func:`predict_dataset` returns.

    n_structures, n_atoms : int
    forces : bool (forces were predicted)
    energy_errors : dict RMSEpa, RMSE, MAEpa, MAE (physical units, vs the reference)
    force_errors : dict RMSE, MAE (physical units) or None
    errors : ErrorMetrics (also internal units and n2p2's log table)
    extrapolation : ExtrapolationSummary
    files : list of Path written
    elapsed : float, seconds
    """

    n_structures: int
    n_atoms: int
    forces: bool
    energy_errors: dict
    force_errors: dict | None
    errors: ErrorMetrics
    extrapolation: ExtrapolationSummary
    files: list = field(default_factory=list)
    elapsed: float = 0.0


def _warnings_of(potential, atoms, result, k):
    """All warnings of a structure (re-evaluates if the first call kept too few)."""
    if result.n_warnings > len(result.warnings):
        full = potential.compute(atoms, forces=False, stress=False,
                                 max_warnings=result.n_warnings, structure_index=k)
        return full.warnings
    return result.warnings


def predict_dataset(potential, data="input.data", output_dir=".", *, forces=None,
                    per_structure=False, show_warnings=False, warnings_stream=None,
                    progress=None, contract=True, max_warnings=10000):
    """Evaluate every structure of ``data`` and write n2p2's output files.

    Parameters
    ----------
    potential : Potential or path
        A loaded :class:`~hpcnnp.potential.Potential` or an n2p2 potential folder.
    data : path
        ``input.data`` (streamed: one structure in memory at a time).
    output_dir : path
        Folder for the files (created if missing).
    forces : bool or None
        Predict forces (``forces.comp``, forces in ``output.data``); None = as
        nnp-dataset: when ``input.nn`` has ``use_short_forces`` (or with
        ``per_structure``, since nnp-predict always writes ``nnforces.out``).
    per_structure : bool
        Also write nnp-predict's ``energy.out``, ``nnatoms.out``, ``nnforces.out``.
    show_warnings : bool
        Print every extrapolation warning (n2p2's line) to ``warnings_stream``
        (default stderr); they are always counted and written to
        ``extrapolation.csv``.
    progress : hpcnnp.progress.Progress or None
        Progress reporter (structures done; atoms done as a second count).
    contract : bool
        Emulate n2p2's fused multiply-adds in its reference arithmetic (see module doc).
    max_warnings : int
        Warnings kept per evaluation before a structure is re-evaluated to get all.

    Returns
    -------
    PredictionSummary

    Raises
    ------
    HpcnnpError
        Missing/inconsistent potential, unreadable or bad ``input.data`` (file and
        line named), a structure the engine cannot evaluate.  No output file is
        changed then.
    """
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    t0 = time.perf_counter()
    if not isinstance(potential, Potential):
        potential = Potential.from_n2p2(potential)
    if not potential.has_weights:
        raise HpcnnpError("the potential has no weights (weights.ZZZ.data) to evaluate")
    data = Path(data)
    if not data.is_file():
        raise InputFileError(data, None, "file not found" if not data.exists()
                             else "is not a regular file")
    settings = potential.settings
    normalized = bool(settings.normalization)
    if forces is None:
        forces = bool(settings.get_flag("use_short_forces") or per_structure)
    c_e, c_l = (settings.normalization[1:] if normalized else (1.0, 1.0))
    f_to_int = c_e / c_l
    out_dir = Path(output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(out_dir, None, f"cannot create output folder: "
                                            f"{exc.strerror}") from None
    warn_stream = sys.stderr if warnings_stream is None else warnings_stream

    errors = ErrorMetrics(settings.normalization)
    extra = ExtrapolationSummary()
    files = _AtomicFiles(out_dir)
    n_struct = n_atoms = 0
    try:
        try:
            f_energy = files.open("energy.comp")
            f_forces = files.open("forces.comp") if forces else None
            f_data = files.open("output.data")
            f_extra = files.open(EXTRAPOLATION_FILE)
            if per_structure:
                f_eout = files.open("energy.out")
                f_aout = files.open("nnatoms.out")
                f_fout = files.open("nnforces.out") if forces else None
        except OSError as exc:
            raise InputFileError(out_dir, None, f"cannot write: {exc.strerror}") from None
        f_energy.write(energy_comp_header(normalized))
        if forces:
            f_forces.write(forces_comp_header(normalized))
        csv_out = csv.writer(f_extra, lineterminator="\n")
        csv_out.writerow(["structure", "atom", "element", "sf", "type", "value", "min",
                          "max"])
        if per_structure:
            f_eout.write(energy_out_header())
            f_aout.write(nnatoms_out_header())
            if forces:
                f_fout.write(nnforces_out_header())

        for k, raw in enumerate(n2p2.iter_data(data, potential.elements)):
            s = N2p2Structure.from_atoms(raw, potential, index=k, contract=contract)
            atoms = s.atoms()
            n = len(atoms)
            if n == 0:
                raise InputFileError(data, s.line, f"structure {k + 1} has no atoms")
            try:
                res = potential.compute(atoms, forces=forces, stress=False,
                                        max_warnings=max_warnings, structure_index=k)
            except StructureError as exc:
                raise InputFileError(data, s.line, f"structure {k + 1}: {exc}") from None
            warnings = _warnings_of(potential, atoms, res, k)
            extra.add(warnings)
            for w in warnings:
                csv_out.writerow([k, w.atom, w.element, w.sf, w.sf_type,
                                  repr(w.value), repr(w.min), repr(w.max)])
                if show_warnings:
                    warn_stream.write(w.n2p2_line() + "\n")

            e_nnp = res.energy
            e_nnp_int = float(res.nn_energies.sum()) * c_e
            errors.add_energy(s.energy_ref_dataset, e_nnp, n)
            if normalized:
                f_energy.write("%10d %10d %16.8E %16.8E %16.8E %16.8E\n"
                               % (k, n, s.energy_ref_dataset, e_nnp, s.energy_ref_int,
                                  e_nnp_int))
            else:
                f_energy.write("%10d %10d %16.8E %16.8E\n" % (k, n, s.energy_ref_dataset,
                                                               e_nnp))
            f_nnp = res.forces if forces else None
            if forces:
                errors.add_forces(s.forces_ref, f_nnp)
                if normalized:
                    f_int = f_nnp * f_to_int
                    ref_phys = (s.forces_ref_int * c_l) / c_e
                    cols = np.stack([ref_phys.ravel(), f_nnp.ravel(),
                                     s.forces_ref_int.ravel(), f_int.ravel()], axis=1)
                    fmt = "%10d %10d %16.8E %16.8E %16.8E %16.8E\n"
                else:
                    cols = np.stack([s.forces_ref.ravel(), f_nnp.ravel()], axis=1)
                    fmt = "%10d %10d %16.8E %16.8E\n"
                f_forces.write("".join(fmt % ((k, i // 3) + tuple(row))
                                       for i, row in enumerate(cols.tolist())))
            f_data.write(format_output_structure(s, e_nnp, f_nnp))
            if per_structure:
                conf = k + 1
                f_eout.write("%10d %10d %24.16E %24.16E %24.16E %24.16E\n"
                             % (conf, n, s.energy_ref_predict, e_nnp,
                                (s.energy_ref_predict - e_nnp) / n if n else 0.0,
                                s.offset))
                f_aout.write("".join(
                    "%10d %10d %3d %24.16E %24.16E %24.16E %24.16E\n"
                    % (conf, i + 1, z, q, 0.0, 0.0, e)
                    for i, (z, q, e) in enumerate(zip(s.numbers.tolist(),
                                                      s.charges_ref.tolist(),
                                                      res.nn_energies.tolist()))))
                if forces:
                    f_fout.write("".join(
                        "%10d %10d %24.16E %24.16E %24.16E %24.16E %24.16E %24.16E\n"
                        % ((conf, i + 1) + tuple(fr) + tuple(fn))
                        for i, (fr, fn) in enumerate(zip(s.forces_ref.tolist(),
                                                         f_nnp.tolist()))))
            n_struct += 1
            n_atoms += n
            if progress is not None:
                progress.update(n_struct, counts={"atoms": n_atoms})
        written = [out_dir / name for name in files.files]
        files.commit()
    except OSError as exc:
        files.abort()
        raise InputFileError(getattr(exc, "filename", None) or out_dir, None,
                             f"I/O error: {exc.strerror or exc}") from None
    except BaseException:
        files.abort()
        raise
    return PredictionSummary(
        n_structures=n_struct, n_atoms=n_atoms, forces=forces,
        energy_errors=errors.energy(), force_errors=errors.forces() if forces else None,
        errors=errors, extrapolation=extra, files=written,
        elapsed=time.perf_counter() - t0)
