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
``conv_length`` and back); :class:`~hpcnnp.io.n2p2_reference.N2p2Structure` repeats that
arithmetic operation by operation, so these columns (positions, lattice, ``Eref``,
``fRef`` ...) come out bit-identical to n2p2's files.  n2p2's default build
(``-O3 -march=native`` on an FMA-capable x86-64, as for ``shared/refdata``) lets GCC contract
``a*b + c`` into fused multiply-adds; the emulation does the same (``contract=True``,
correctly rounded :func:`fma`).  The *NNP* numbers (energies, forces) are hpcnnp's own
and agree with n2p2's to ~1e-15 relative (the last of the 17 printed digits may differ).

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
only when the whole data set has been evaluated: a failure (bad input, a full disk,
Ctrl-C or SIGTERM) leaves the previous files untouched and no partial file behind; the
temporary files of a run killed by SIGKILL are removed by the next run.  The output
folder is locked while a prediction writes into it (two runs cannot mix their files).

Under MPI (``mpiexec -n P hpcnnp predict``) rank 0 reads the file and hands out the
structures (``k`` to rank ``k % P``, in rounds of ``8 P``), gathers the results and
writes every file in file order, so the files equal a serial run's.

The n2p2 file formats live in :mod:`hpcnnp.io.n2p2_output`, the reference arithmetic
in :mod:`hpcnnp.io.n2p2_reference`; their names are importable from here as before.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from hpcnnp import mpi
from hpcnnp.errors import HpcnnpError, InputFileError, StructureError
from hpcnnp.fileio import AtomicFiles, folder_lock, output_error, remove_stale_temps
from hpcnnp.io import n2p2
from hpcnnp.io.n2p2 import count_structures  # noqa: F401  (trainer.py imports it from here)
from hpcnnp.io.n2p2_output import (  # noqa: F401
    energy_comp_header,
    energy_out_header,
    file_header,
    forces_comp_header,
    format_output_structure,
    nnatoms_out_header,
    nnforces_out_header,
)
from hpcnnp.io.n2p2_reference import N2p2Structure, fma, n2p2_inverse_box, n2p2_remap  # noqa: F401

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


@dataclass
class _Record:
    """One evaluated structure: the text of every output file and the numbers for the
    error metrics (built on any rank, written by rank 0 in structure order)."""

    k: int
    n: int
    texts: dict
    warnings: list
    e_ref: float
    e_nnp: float
    f_ref: np.ndarray | None
    f_nnp: np.ndarray | None


class _Evaluator:
    """Evaluates structure ``k`` of the data set into a :class:`_Record`."""

    def __init__(self, potential, data, forces, per_structure, contract, max_warnings):
        self.potential = potential
        self.data = data
        self.forces = forces
        self.per_structure = per_structure
        self.contract = contract
        self.max_warnings = max_warnings
        norm = potential.settings.normalization
        self.normalized = bool(norm)
        self.c_e, self.c_l = (norm[1:] if norm else (1.0, 1.0))

    def __call__(self, k, raw):
        s = N2p2Structure.from_atoms(raw, self.potential, index=k, contract=self.contract)
        atoms = s.atoms()
        n = len(atoms)
        if n == 0:
            raise InputFileError(self.data, s.line, f"structure {k + 1} has no atoms")
        try:
            res = self.potential.compute(atoms, forces=self.forces, stress=False,
                                         max_warnings=self.max_warnings, structure_index=k)
        except StructureError as exc:
            raise InputFileError(self.data, s.line, f"structure {k + 1}: {exc}") from None
        warnings = _warnings_of(self.potential, atoms, res, k)
        f_nnp = res.forces if self.forces else None
        texts = {"energy.comp": self._energy_comp(k, n, s, res),
                 "output.data": format_output_structure(s, res.energy, f_nnp),
                 EXTRAPOLATION_FILE: _csv_rows(
                     [k, w.atom, w.element, w.sf, w.sf_type, repr(w.value), repr(w.min),
                      repr(w.max)] for w in warnings)}
        if self.forces:
            texts["forces.comp"] = self._forces_comp(k, s, f_nnp)
        if self.per_structure:
            texts.update(self._per_structure(k, n, s, res, f_nnp))
        return _Record(k=k, n=n, texts=texts, warnings=warnings, e_ref=s.energy_ref_dataset,
                       e_nnp=res.energy, f_ref=s.forces_ref if self.forces else None,
                       f_nnp=f_nnp)

    def _energy_comp(self, k, n, s, res):
        if self.normalized:
            e_nnp_int = float(res.nn_energies.sum()) * self.c_e
            return ("%10d %10d %16.8E %16.8E %16.8E %16.8E\n"
                    % (k, n, s.energy_ref_dataset, res.energy, s.energy_ref_int, e_nnp_int))
        return "%10d %10d %16.8E %16.8E\n" % (k, n, s.energy_ref_dataset, res.energy)

    def _forces_comp(self, k, s, f_nnp):
        if self.normalized:
            c_e, c_l = self.c_e, self.c_l
            f_int = f_nnp * (c_e / c_l)
            ref_phys = (s.forces_ref_int * c_l) / c_e
            cols = np.stack([ref_phys.ravel(), f_nnp.ravel(), s.forces_ref_int.ravel(),
                             f_int.ravel()], axis=1)
            fmt = "%10d %10d %16.8E %16.8E %16.8E %16.8E\n"
        else:
            cols = np.stack([s.forces_ref.ravel(), f_nnp.ravel()], axis=1)
            fmt = "%10d %10d %16.8E %16.8E\n"
        return "".join(fmt % ((k, i // 3) + tuple(row)) for i, row in enumerate(cols.tolist()))

    def _per_structure(self, k, n, s, res, f_nnp):
        conf = k + 1
        out = {"energy.out": "%10d %10d %24.16E %24.16E %24.16E %24.16E\n"
                             % (conf, n, s.energy_ref_predict, res.energy,
                                (s.energy_ref_predict - res.energy) / n if n else 0.0,
                                s.offset),
               "nnatoms.out": "".join(
                   "%10d %10d %3d %24.16E %24.16E %24.16E %24.16E\n"
                   % (conf, i + 1, z, q, 0.0, 0.0, e)
                   for i, (z, q, e) in enumerate(zip(s.numbers.tolist(),
                                                     s.charges_ref.tolist(),
                                                     res.nn_energies.tolist())))}
        if self.forces:
            out["nnforces.out"] = "".join(
                "%10d %10d %24.16E %24.16E %24.16E %24.16E %24.16E %24.16E\n"
                % ((conf, i + 1) + tuple(fr) + tuple(fn))
                for i, (fr, fn) in enumerate(zip(s.forces_ref.tolist(), f_nnp.tolist())))
        return out


def _csv_rows(rows):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _file_names(forces, per_structure):
    """Output files in the order they are opened."""
    names = ["energy.comp"] + (["forces.comp"] if forces else []) + ["output.data",
                                                                      EXTRAPOLATION_FILE]
    if per_structure:
        names += ["energy.out", "nnatoms.out"] + (["nnforces.out"] if forces else [])
    return names


def _headers(normalized):
    return {"energy.comp": energy_comp_header(normalized),
            "forces.comp": forces_comp_header(normalized),
            "output.data": "",
            EXTRAPOLATION_FILE: "structure,atom,element,sf,type,value,min,max\n",
            "energy.out": energy_out_header(), "nnatoms.out": nnatoms_out_header(),
            "nnforces.out": nnforces_out_header()}


#: structures per rank and round of the parallel prediction
BATCH = 8


def _records(evaluate, data, elements, comm, stop=lambda: False, batch=BATCH):
    """Yield the :class:`_Record` of every structure in file order (rank 0; other
    ranks yield nothing) until ``stop()`` (asked on rank 0) says so.

    Under MPI rank 0 reads the file (one reader) and hands out rounds of
    ``size * batch`` structures, structure ``k`` to rank ``k % size``; it gathers the
    round's records and yields them in file order (one writer).  An error on any rank
    -- the first in file order, or a read error of rank 0 -- is raised on every rank.
    """
    if comm is None:
        yield from _serial_records(evaluate, data, elements, stop)
        return
    rank, size = mpi.rank_size(comm)
    structures = enumerate(n2p2.iter_data(data, elements)) if rank == 0 else None
    while True:
        parts = _next_round(structures, size, batch, stop) if rank == 0 else None
        status = comm.bcast(parts if isinstance(parts, str) or parts is None else None,
                            root=0)
        if status == "done":
            return
        if status is not None:
            raise mpi.RankError(status)
        records, error = _evaluate_part(evaluate, comm.scatter(parts, root=0))
        gathered = comm.gather((records, error and (error[0], str(error[1]))), root=0)
        first = None
        if rank == 0:
            errors = sorted(e for _, e in gathered if e is not None)
            first = errors[0][1] if errors else None
        first = comm.bcast(first, root=0)
        if first is not None:
            if error is not None and str(error[1]) == first:
                error[1].collective = True
                raise error[1]
            raise mpi.RankError(first)
        if rank == 0:
            yield from sorted((r for recs, _ in gathered for r in recs), key=lambda r: r.k)


def _serial_records(evaluate, data, elements, stop):
    for k, raw in enumerate(n2p2.iter_data(data, elements)):
        if stop():
            return
        yield evaluate(k, raw)


def _next_round(structures, size, batch, stop):
    """Rank 0: the next round's structures per rank, "done", or a read error's text."""
    if stop():
        return "done"
    try:
        chunk = list(islice(structures, size * batch))
    except HpcnnpError as exc:
        return str(exc)
    return [chunk[r::size] for r in range(size)] if chunk else "done"


def _evaluate_part(evaluate, part):
    """Records of one rank's structures, stopping at the first error ``(k, exc)``."""
    records = []
    for k, raw in part:
        try:
            records.append(evaluate(k, raw))
        except HpcnnpError as exc:
            return records, (k, exc)
    return records, None


def predict_dataset(potential, data="input.data", output_dir=".", *, forces=None,
                    per_structure=False, show_warnings=False, warnings_stream=None,
                    progress=None, contract=True, max_warnings=10000, comm=None):
    """Evaluate every structure of ``data`` and write n2p2's output files.

    Parameters
    ----------
    potential : Potential or path
        A loaded :class:`~hpcnnp.potential.Potential` or an n2p2 potential folder.
    data : path
        ``input.data`` (streamed: a round of ``8 P`` structures in memory at a time).
    output_dir : path
        Folder for the files (created if missing); locked for the run
        (:func:`hpcnnp.fileio.folder_lock`), temporary files of killed earlier runs in
        it are removed.
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
        Progress reporter (structures done; atoms done as a second count; rank 0).
    contract : bool
        Emulate n2p2's fused multiply-adds in its reference arithmetic (see module doc).
    max_warnings : int
        Warnings kept per evaluation before a structure is re-evaluated to get all.
    comm : mpi4py communicator, optional
        Split the structures over the ranks (structure ``k`` on rank ``k % size``);
        rank 0 reads the file and writes every file, in file order: the files are
        identical to a serial run's.  Collective; every rank returns the same summary.

    Returns
    -------
    PredictionSummary

    Raises
    ------
    HpcnnpError
        Missing/inconsistent potential, unreadable, empty or bad ``input.data`` (file
        and line named), a structure the engine cannot evaluate, an output folder that
        cannot be written (:class:`~hpcnnp.errors.OutputError`: full disk, read-only).
        No output file is changed then and no temporary file is left.
    """
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
    if forces is None:
        forces = bool(potential.settings.get_flag("use_short_forces") or per_structure)
    evaluate = _Evaluator(potential, data, forces, per_structure, contract, max_warnings)
    out_dir = Path(output_dir)
    names = _file_names(forces, per_structure)
    with folder_lock(out_dir, "hpcnnp predict", comm):
        if mpi.rank_size(comm)[0] == 0:
            remove_stale_temps(out_dir)
        summary = _write_outputs(evaluate, data, out_dir, names, comm, progress,
                                 show_warnings, warnings_stream)
    summary.elapsed = time.perf_counter() - t0
    return summary


class _Outputs:
    """Rank 0's side of a prediction: the output files, the error metrics and the
    extrapolation summary, fed one record at a time in file order.  A write error
    (full disk) is kept in :attr:`error` and stops the run (``stop()``)."""

    def __init__(self, evaluate, out_dir, names, progress, show_warnings, warn_stream):
        self.evaluate = evaluate
        self.out_dir = out_dir
        self.errors = ErrorMetrics(evaluate.potential.settings.normalization)
        self.extra = ExtrapolationSummary()
        self.progress = progress
        self.warn_stream = warn_stream if show_warnings else None
        self.files = AtomicFiles(out_dir)
        self.n_struct = self.n_atoms = 0
        self.error = None
        headers = _headers(evaluate.normalized)
        try:
            self.handles = {n: self.files.open(n, errors="surrogateescape") for n in names}
            for name, fh in self.handles.items():
                fh.write(headers[name])
        except (OSError, HpcnnpError) as exc:
            self._fail(exc)
        except BaseException:           # Ctrl-C / SIGTERM while opening: no temp file left
            self.files.abort()
            raise

    def _fail(self, exc):
        if self.error is None:
            self.error = exc if isinstance(exc, HpcnnpError) else \
                output_error(getattr(exc, "filename", None) or self.out_dir, exc)
        self.files.abort()

    def stop(self):
        return self.error is not None

    def add(self, rec):
        if self.error is not None:
            return
        try:
            for name, text in rec.texts.items():
                self.handles[name].write(text)
        except OSError as exc:
            self._fail(exc)
            return
        self.extra.add(rec.warnings)
        if self.warn_stream is not None:
            for w in rec.warnings:
                self.warn_stream.write(w.n2p2_line() + "\n")
        self.errors.add_energy(rec.e_ref, rec.e_nnp, rec.n)
        if rec.f_nnp is not None:
            self.errors.add_forces(rec.f_ref, rec.f_nnp)
        self.n_struct += 1
        self.n_atoms += rec.n
        if self.progress is not None:
            self.progress.update(self.n_struct, counts={"atoms": self.n_atoms})

    def finish(self, data):
        """Commit the files and return the summary; raises the first error."""
        if self.error is None and self.n_struct == 0:
            self._fail(InputFileError(data, None, "no structures (the file is empty or has "
                                                  "no 'begin' line); nothing to predict"))
        if self.error is not None:
            raise self.error
        written = self.files.paths
        self.files.commit()
        return PredictionSummary(
            n_structures=self.n_struct, n_atoms=self.n_atoms, forces=self.evaluate.forces,
            energy_errors=self.errors.energy(),
            force_errors=self.errors.forces() if self.evaluate.forces else None,
            errors=self.errors, extrapolation=self.extra, files=written)


def _write_outputs(evaluate, data, out_dir, names, comm, progress, show_warnings,
                   warnings_stream):
    """Stream the records into rank 0's temporary files and commit them at the end
    (collective: an error of rank 0's files is raised on every rank)."""
    rank = mpi.rank_size(comm)[0]
    warn_stream = sys.stderr if warnings_stream is None else warnings_stream
    sink = _Outputs(evaluate, out_dir, names, progress, show_warnings, warn_stream) \
        if rank == 0 else None
    stop = sink.stop if sink is not None else (lambda: False)
    try:
        for rec in _records(evaluate, data, evaluate.potential.elements, comm, stop):
            sink.add(rec)
    except BaseException:
        if sink is not None:
            sink.files.abort()
        raise
    summary = error = None
    if sink is not None:
        try:
            summary = sink.finish(data)
        except HpcnnpError as exc:
            error = exc
    mpi.agree(comm, error)
    return summary if comm is None else comm.bcast(summary, root=0)
