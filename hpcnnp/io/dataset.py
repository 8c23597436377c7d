"""The labelled data set: ONE HDF5 file of structures, energies, forces and provenance.

Layout (``format = "hpcnnp-dataset"``, ``version = 1``; units Å, eV, eV/Å, eV/Å³, K)::

    /                       attrs: format, version, n_structures, n_atoms, n_text, created
    /structures/natoms      int32   (N,)      atoms per structure
    /structures/offset      int64   (N,)      first row of the structure in /atoms
    /structures/cell        float64 (N,3,3)   rows = lattice vectors
    /structures/pbc         bool    (N,3)
    /structures/energy      float64 (N,)      reference energy (force-consistent)
    /structures/stress      float64 (N,6)     Voigt xx yy zz yz xz xy, ASE sign; NaN = none
    /structures/temperature float64 (N,)      sampling temperature; NaN = unknown
    /structures/class       S128    (N,)      structure class, UTF-8 ("LLZO cubic", "6Co_La")
    /structures/labeler     int64   (N,2)     (offset, length) in /text of a JSON object:
                                              labeler name + settings
    /structures/provenance  int64   (N,2)     (offset, length) in /text of a JSON object:
                                              seed, step, task, builder, versions ...
    /structures/hash        S40     (N,)      structure hash (deduplication)
    /atoms/numbers          uint8   (M,)
    /atoms/positions        float64 (M,3)
    /atoms/forces           float64 (M,3)
    /text                   uint8   (T,)      UTF-8 bytes of the JSON texts

Only the first ``n_structures`` rows of /structures, ``n_atoms`` rows of /atoms
and ``n_text`` bytes of /text are valid; the arrays may be longer.  (Fixed-size
types only: HDF5's variable-length strings live in a heap that a killed writer
can leave inconsistent.)

Safe appending
--------------
There is one writer at a time (HDF5's file lock refuses a second one; a campaign
merges all task outputs in its driver).  :meth:`Dataset.append` writes the new
rows beyond the valid ones, flushes, and only then bumps the two count
attributes and flushes again.  A writer killed at any point leaves a file whose
counts describe complete records (rows written after the last count update are
ignored and overwritten by the next append).  The file uses HDF5's default
(1.8-compatible) format: with the newer format a killed writer leaves a
"file is already open for write" flag that only ``h5clear`` removes.  A new file
is created under a temporary name and renamed, so it is never half-made.

Deduplication
-------------
Each record's :func:`structure_hash` (SHA-1 of the atomic numbers, positions
and cell rounded to 1e-5 Å, and pbc) is compared with those already in the
file: appending a structure twice stores it once (so re-merging a campaign
task is harmless).  Positions are not wrapped: the same structure with an
atom shifted by a lattice vector counts as different.

Import and export
-----------------
:func:`export_n2p2` writes n2p2's ``input.data`` (optionally tagging a random
test fraction with ``set=test``; every number survives the round trip exactly),
:func:`export_extxyz` extended XYZ with all metadata (ASE's writer keeps 8
decimals of positions and forces).  :func:`import_files` reads extended XYZ, VASP ``vasprun.xml`` and
``OUTCAR`` (through :mod:`ase.io`) and CP2K MD output (``PROJECT-pos-1.xyz`` +
``PROJECT-frc-1.xyz`` (+ ``PROJECT-1.cell``)); :data:`IMPORTERS` is the table.
:func:`find_outliers` flags structures whose energy per atom or largest force
component lies beyond k σ of their class.

>>> with Dataset("dataset.h5", "a") as ds:                          # doctest: +SKIP
...     ds.append([Record.from_atoms(atoms, structure_class="LCO", temperature=1000)])
>>> export_n2p2("dataset.h5", "input.data", test_fraction=0.1, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.fileio import atomic_open, atomic_path
from hpcnnp.io.jsonvalues import json_default

__all__ = ["FORMAT", "VERSION", "DatasetError", "Record", "Dataset", "structure_hash",
           "export_n2p2", "held_out_sets", "export_extxyz", "import_files", "read_structures", "IMPORTERS",
           "detect_format", "find_outliers", "filter_dataset", "summary", "HASH_DECIMALS"]

FORMAT = "hpcnnp-dataset"
VERSION = 1
#: positions and cell are rounded to this many decimals (Å) for the structure hash
HASH_DECIMALS = 5

_S_CHUNK = 1024      # rows per chunk of /structures
_A_CHUNK = 16384     # rows per chunk of /atoms


class DatasetError(HpcnnpError, ValueError):
    """A problem with a data set file (not ours, damaged, locked, bad record)."""


def _h5py():
    import h5py
    return h5py


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------

def structure_hash(numbers, positions, cell, pbc=(True, True, True), decimals=HASH_DECIMALS):
    """Hex SHA-1 of a structure: atomic numbers, positions and cell rounded to
    *decimals* (Å), and pbc."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(numbers, dtype=np.int64).tobytes())
    for arr in (positions, cell):
        r = np.round(np.asarray(arr, dtype=float), decimals) + 0.0   # -0.0 -> 0.0
        h.update(np.ascontiguousarray(r).tobytes())
    h.update(np.asarray(pbc, dtype=bool).tobytes())
    return h.hexdigest()


def _json(obj):
    return json.dumps(obj, sort_keys=True, default=json_default, ensure_ascii=False)


@dataclass
class Record:
    """One labelled structure.

    Attributes
    ----------
    numbers : (N,) int
    positions : (N, 3) float, Å
    cell : (3, 3) float, Å
    pbc : (3,) bool
    energy : float, eV
        Reference energy (the force-consistent/free energy for smeared DFT).
    forces : (N, 3) float, eV/Å
    stress : (6,) float or None, eV/Å^3 (Voigt, ASE sign)
    structure_class : str
    temperature : float, K (NaN if unknown)
    labeler : dict
        ``{"name": ..., settings...}``.
    provenance : dict
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float
    forces: np.ndarray
    stress: np.ndarray | None = None
    structure_class: str = ""
    temperature: float = math.nan
    labeler: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        n = len(self.numbers)
        self.positions = np.asarray(self.positions, dtype=float).reshape(n, 3)
        self.cell = np.asarray(self.cell, dtype=float).reshape(3, 3)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        self.forces = np.asarray(self.forces, dtype=float).reshape(n, 3)
        self.energy = float(self.energy)
        if self.stress is not None:
            s = np.asarray(self.stress, dtype=float)
            if s.shape == (3, 3):
                s = s.ravel()[[0, 4, 8, 5, 2, 1]]
            self.stress = s.reshape(6) if not np.all(np.isnan(s)) else None
        self.temperature = math.nan if self.temperature is None else float(self.temperature)
        self.structure_class = str(self.structure_class or "")

    def check(self, where="record"):
        """Raise DatasetError if the record is not fit for a data set."""
        n = len(self.numbers)
        if n == 0:
            raise DatasetError(f"{where}: no atoms")
        if np.any(self.numbers < 1) or np.any(self.numbers > 118):
            raise DatasetError(f"{where}: atomic numbers outside 1..118")
        for name, arr in (("energy", self.energy), ("positions", self.positions),
                          ("forces", self.forces), ("cell", self.cell)):
            if not np.all(np.isfinite(arr)):
                raise DatasetError(f"{where}: non-finite {name}")
        if self.stress is not None and not np.all(np.isfinite(self.stress)):
            raise DatasetError(f"{where}: non-finite stress")
        if not np.isnan(self.temperature) and self.temperature <= 0:
            raise DatasetError(f"{where}: temperature must be > 0 K, got {self.temperature}")
        if np.any(self.pbc) and abs(np.linalg.det(self.cell)) < 1e-6:
            raise DatasetError(f"{where}: periodic structure with a singular cell")

    @property
    def hash(self):
        return structure_hash(self.numbers, self.positions, self.cell, self.pbc)

    @classmethod
    def from_atoms(cls, atoms, structure_class=None, temperature=None, labeler=None,
                   provenance=None):
        """A record from an :class:`ase.Atoms` whose calculator holds energy and forces
        (``free_energy`` is preferred when present: it is the force-consistent one).
        Class, temperature, labeler and provenance default to ``atoms.info`` keys
        ``structure_class``, ``temperature``, ``labeler`` and ``provenance``."""
        calc = atoms.calc
        results = getattr(calc, "results", None) or {}
        if "forces" not in results or ("energy" not in results and
                                       "free_energy" not in results):
            raise DatasetError("structure without reference energy and forces")
        energy = results.get("free_energy", results.get("energy"))
        info = atoms.info
        lab = labeler if labeler is not None else info.get("labeler", {})
        if isinstance(lab, str):
            lab = _loads(lab, {"name": lab})
        prov = provenance if provenance is not None else info.get("provenance", {})
        if isinstance(prov, str):
            prov = _loads(prov, {"text": prov})
        temp = temperature if temperature is not None else info.get("temperature", math.nan)
        return cls(numbers=atoms.numbers, positions=atoms.positions, cell=np.array(atoms.cell),
                   pbc=atoms.pbc, energy=energy, forces=results["forces"],
                   stress=results.get("stress"),
                   structure_class=structure_class if structure_class is not None
                   else info.get("structure_class", ""),
                   temperature=temp, labeler=dict(lab), provenance=dict(prov))

    def to_atoms(self):
        """:class:`ase.Atoms` with a SinglePointCalculator (energy, free_energy, forces,
        stress) and ``info`` structure_class, temperature, labeler, provenance."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell,
                      pbc=self.pbc)
        res = {"energy": self.energy, "free_energy": self.energy, "forces": self.forces.copy()}
        if self.stress is not None:
            res["stress"] = self.stress.copy()
        atoms.calc = SinglePointCalculator(atoms, **res)
        atoms.info.update(structure_class=self.structure_class, temperature=self.temperature,
                          labeler=dict(self.labeler), provenance=dict(self.provenance))
        return atoms


def _loads(text, fallback):
    try:
        out = json.loads(text)
        return out if isinstance(out, dict) else fallback
    except (TypeError, ValueError):
        return fallback


# ---------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------

_S_FIELDS = {   # name -> (dtype, trailing shape)
    "natoms": (np.int32, ()), "offset": (np.int64, ()), "cell": (np.float64, (3, 3)),
    "pbc": (np.bool_, (3,)), "energy": (np.float64, ()), "stress": (np.float64, (6,)),
    "temperature": (np.float64, ()), "class": ("S128", ()), "labeler": (np.int64, (2,)),
    "provenance": (np.int64, (2,)), "hash": ("S40", ()),
}
_CLASS_BYTES = 128
_A_FIELDS = {"numbers": (np.uint8, ()), "positions": (np.float64, (3,)),
             "forces": (np.float64, (3,))}


def _create(path):
    """Create an empty data set file atomically (temporary name + rename)."""
    h5py = _h5py()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            f.attrs["n_structures"] = np.int64(0)
            f.attrs["n_atoms"] = np.int64(0)
            f.attrs["n_text"] = np.int64(0)
            f.create_dataset("text", shape=(0,), maxshape=(None,), chunks=(65536,),
                             dtype=np.uint8)
            for group, fields, chunk in (("structures", _S_FIELDS, _S_CHUNK),
                                         ("atoms", _A_FIELDS, _A_CHUNK)):
                g = f.create_group(group)
                for name, (dtype, shape) in fields.items():
                    g.create_dataset(name, shape=(0,) + shape, maxshape=(None,) + shape,
                                     chunks=(chunk,) + shape,
                                     dtype=dtype)


class Dataset:
    """A data set file (see the module docstring for the layout).

    Parameters
    ----------
    path : str or path
    mode : {"r", "a"}
        ``"r"`` read only; ``"a"`` read and append, creating the file if missing.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path, mode="r"):
        if mode not in ("r", "a"):
            raise ValueError("mode must be 'r' or 'a'")
        h5py = _h5py()
        self.path = Path(path)
        self.mode = mode
        if mode == "a" and not self.path.exists():
            _create(self.path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: data set file not found")
        try:
            self._f = h5py.File(self.path, "r" if mode == "r" else "r+")
        except OSError as exc:
            text = str(exc)
            if "lock" in text.lower():
                raise DatasetError(f"{self.path}: the file is open for writing in another "
                                   "process (one writer at a time); try again when it is "
                                   "done") from None
            raise DatasetError(f"{self.path}: not a readable HDF5 file ({text})") from None
        f = self._f
        if f.attrs.get("format") != FORMAT:
            self._f.close()
            raise DatasetError(f"{self.path}: not an hpcnnp data set (attribute format = "
                               f"{f.attrs.get('format')!r}, expected {FORMAT!r})")
        if int(f.attrs.get("version", 0)) > VERSION:
            self._f.close()
            raise DatasetError(f"{self.path}: data set format version "
                               f"{int(f.attrs['version'])} is newer than this hpcnnp "
                               f"({VERSION})")
        self._s = f["structures"]
        self._a = f["atoms"]
        self._hashes = None
        n, m = self._counts()
        if self._s["natoms"].shape[0] < n or self._a["numbers"].shape[0] < m:
            raise DatasetError(f"{self.path}: damaged: counts ({n} structures, {m} atoms) "
                               "exceed the stored arrays")

    # -- basics --------------------------------------------------------------------

    def _counts(self):
        return int(self._f.attrs["n_structures"]), int(self._f.attrs["n_atoms"])

    def _text(self, spans):
        """Decode JSON objects at (offset, length) *spans* of /text."""
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        if not len(spans):
            return []
        lo = int(spans[:, 0].min())
        hi = int((spans[:, 0] + spans[:, 1]).max())
        blob = self._f["text"][lo:hi].tobytes()
        return [_loads(blob[o - lo:o - lo + n].decode("utf-8", "replace"), {})
                for o, n in spans]

    def __len__(self):
        return self._counts()[0]

    @property
    def n_atoms(self):
        """Total number of atoms of all structures."""
        return self._counts()[1]

    def close(self):
        if getattr(self, "_f", None) is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Dataset({str(self.path)!r}, {len(self)} structures)"

    # -- columns -------------------------------------------------------------------

    def column(self, name):
        """All valid values of a per-structure column (``natoms``, ``energy``,
        ``temperature``, ``class``, ``hash``, ``stress``, ``cell``, ``pbc`` ...)."""
        n = len(self)
        values = self._s[name][:n]
        if name in ("labeler", "provenance"):
            return np.array(self._text(values), dtype=object)
        if name in ("class", "hash"):
            return np.array([v.decode("utf-8", "replace") for v in values], dtype=object)
        return values

    @property
    def classes(self):
        return self.column("class")

    @property
    def energies(self):
        return self.column("energy")

    @property
    def temperatures(self):
        return self.column("temperature")

    def hashes(self):
        """Set of the structure hashes in the file."""
        if self._hashes is None:
            self._hashes = set(self.column("hash"))
        return self._hashes

    # -- reading -------------------------------------------------------------------

    def _block(self, start, stop):
        """Records start..stop-1 (contiguous) with one read per array."""
        s = {k: self._s[k][start:stop] for k in _S_FIELDS}
        if stop <= start:
            return []
        a0 = int(s["offset"][0])
        a1 = int(s["offset"][-1] + s["natoms"][-1])
        a = {k: self._a[k][a0:a1] for k in _A_FIELDS}
        labelers = self._text(s["labeler"])
        provs = self._text(s["provenance"])
        out = []
        for j in range(stop - start):
            lo = int(s["offset"][j]) - a0
            hi = lo + int(s["natoms"][j])
            stress = s["stress"][j]
            out.append(Record(
                numbers=a["numbers"][lo:hi].astype(np.int64), positions=a["positions"][lo:hi],
                cell=s["cell"][j], pbc=s["pbc"][j], energy=float(s["energy"][j]),
                forces=a["forces"][lo:hi],
                stress=None if np.all(np.isnan(stress)) else stress,
                structure_class=s["class"][j].decode("utf-8", "replace"),
                temperature=float(s["temperature"][j]),
                labeler=labelers[j], provenance=provs[j]))
        return out

    def records(self, indices=None, block=512):
        """Iterate over records (all, or the given indices in increasing order)."""
        n = len(self)
        if indices is None:
            for start in range(0, n, block):
                yield from self._block(start, min(n, start + block))
            return
        idx = np.unique(np.asarray(list(indices), dtype=np.int64))
        if len(idx) and (idx[0] < 0 or idx[-1] >= n):
            raise IndexError(f"{self.path}: index out of range 0..{n - 1}")
        k = 0
        while k < len(idx):
            start = int(idx[k])
            stop = min(n, start + block)
            sel = idx[(idx >= start) & (idx < stop)]
            recs = self._block(start, int(sel[-1]) + 1)
            for i in sel:
                yield recs[int(i) - start]
            k += len(sel)

    def __getitem__(self, i):
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{self.path}: index {i} out of range ({n} structures)")
        return self._block(i, i + 1)[0]

    def atoms(self, i):
        """Structure *i* as :class:`ase.Atoms` (see :meth:`Record.to_atoms`)."""
        return self[i].to_atoms()

    def select(self, classes=None, temperatures=None):
        """Indices of the structures of the given classes and/or temperatures (K)."""
        mask = np.ones(len(self), bool)
        if classes:
            mask &= np.isin(self.classes, list(classes))
        if temperatures:
            t = self.temperatures
            mask &= np.any([np.isclose(t, float(x)) for x in temperatures], axis=0)
        return np.flatnonzero(mask)

    # -- appending -----------------------------------------------------------------

    def append(self, records, dedup=True, where="record"):
        """Append records (safe against a killed writer, see the module docstring).

        Parameters
        ----------
        records : iterable of Record or ase.Atoms
        dedup : bool
            Skip structures whose hash is already in the file (or earlier in *records*).
        where : str
            Prefix of error messages.

        Returns
        -------
        (int, int)
            Number appended, number skipped as duplicates.

        Raises
        ------
        DatasetError
            A record with missing or non-finite data (nothing is written).
        """
        if self.mode != "a":
            raise DatasetError(f"{self.path}: opened read-only")
        batch, dup = [], 0
        seen = self.hashes() if dedup else set()
        new_hashes = set()
        for k, rec in enumerate(records):
            if not isinstance(rec, Record):
                rec = Record.from_atoms(rec)
            rec.check(f"{where} {k}")
            h = rec.hash
            if dedup and (h in seen or h in new_hashes):
                dup += 1
                continue
            if len(rec.structure_class.encode()) > _CLASS_BYTES:
                raise DatasetError(f"{where} {k}: structure class longer than "
                                   f"{_CLASS_BYTES} bytes")
            new_hashes.add(h)
            batch.append((rec, h))
        if not batch:
            return 0, dup
        n, m = self._counts()
        t = int(self._f.attrs.get("n_text", 0))
        k = len(batch)
        texts, spans, pos = [], {"labeler": [], "provenance": []}, t
        for rec, _ in batch:
            for key, obj in (("labeler", rec.labeler), ("provenance", rec.provenance)):
                b = _json(obj).encode("utf-8")
                spans[key].append((pos, len(b)))
                texts.append(b)
                pos += len(b)
        blob = np.frombuffer(b"".join(texts), dtype=np.uint8)
        natoms = np.array([len(r.numbers) for r, _ in batch], np.int64)
        na = int(natoms.sum())
        offsets = m + np.concatenate([[0], np.cumsum(natoms)[:-1]])
        cols = {
            "natoms": natoms.astype(np.int32), "offset": offsets,
            "cell": np.array([r.cell for r, _ in batch]),
            "pbc": np.array([r.pbc for r, _ in batch]),
            "energy": np.array([r.energy for r, _ in batch]),
            "stress": np.array([r.stress if r.stress is not None else np.full(6, np.nan)
                                for r, _ in batch]),
            "temperature": np.array([r.temperature for r, _ in batch]),
            "class": np.array([r.structure_class.encode() for r, _ in batch], dtype="S128"),
            "labeler": np.array(spans["labeler"], dtype=np.int64),
            "provenance": np.array(spans["provenance"], dtype=np.int64),
            "hash": np.array([h.encode() for _, h in batch], dtype="S40"),
        }
        acols = {"numbers": np.concatenate([r.numbers for r, _ in batch]).astype(np.uint8),
                 "positions": np.concatenate([r.positions for r, _ in batch]),
                 "forces": np.concatenate([r.forces for r, _ in batch])}
        # 1. data beyond the valid rows ...
        for name, values in cols.items():
            ds = self._s[name]
            if ds.shape[0] < n + k:
                ds.resize((n + k,) + ds.shape[1:])
            ds[n:n + k] = values
        for name, values in acols.items():
            ds = self._a[name]
            if ds.shape[0] < m + na:
                ds.resize((m + na,) + ds.shape[1:])
            ds[m:m + na] = values
        text = self._f["text"]
        if text.shape[0] < t + len(blob):
            text.resize((t + len(blob),))
        text[t:t + len(blob)] = blob
        self._f.flush()
        # 2. ... then the counts, last
        self._f.attrs["n_text"] = np.int64(t + len(blob))
        self._f.attrs["n_atoms"] = np.int64(m + na)
        self._f.attrs["n_structures"] = np.int64(n + k)
        self._f.flush()
        if self._hashes is not None:
            self._hashes |= new_hashes
        return k, dup


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------

def _open(ds_or_path):
    if isinstance(ds_or_path, Dataset):
        return ds_or_path, False
    return Dataset(ds_or_path, "r"), True


def _comment(rec, index):
    parts = [rec.structure_class or "unclassified"]
    if not math.isnan(rec.temperature):
        parts.append(f"T={rec.temperature:g}K")
    if rec.labeler.get("name"):
        parts.append(f"labeler={rec.labeler['name']}")
    parts.append(f"hpcnnp-dataset:{index}")
    return " | ".join(parts)


def canonical_order(ds, indices):
    """``indices`` sorted by (structure class, temperature, provenance task, MD step,
    structure hash).

    Campaign tasks are merged into the data set in the order they finish, which
    varies from run to run; exporting in this order instead makes the exported file
    -- and so the train/test split and the training that reads it -- the same for
    the same campaign, however its tasks were scheduled.
    """
    idx = np.asarray(indices, int)
    keys = []
    for i, rec in zip(idx, ds.records(idx)):
        prov = rec.provenance or {}
        temp = rec.temperature if not math.isnan(rec.temperature) else math.inf
        step = prov.get("step")
        keys.append((rec.structure_class or "", temp, str(prov.get("task", "")),
                     int(step) if isinstance(step, (int, float)) else -1,
                     rec.hash or "", int(i)))
    return np.array([k[-1] for k in sorted(keys)], dtype=int)


def _records_in_order(ds, order):
    """Records in the given (arbitrary) order, read in increasing index order."""
    recs = dict(zip(np.sort(order).tolist(), ds.records(np.sort(order))))
    for i in order:
        yield int(i), recs[int(i)]


def held_out_sets(dataset, indices=None, fraction=0.15, minimum=2, seed=0):
    """``set=train``/``set=test`` of every structure: a held-out test set per class.

    A structure whose provenance already names its set (``provenance["set"]``, e.g.
    the test frames of active learning) keeps it.  Within each structure class the
    others are ordered by a seeded hash of their structure hash (so the choice does
    not depend on the order of the file), and the first ``max(minimum,
    round(fraction n))`` go to the test set -- but always at least one structure of
    the class stays for training.  Every class of the data set is therefore present
    in the test set (when it has two or more structures).

    Returns
    -------
    dict
        index -> "train" or "test".
    """
    ds, close = _open(dataset)
    try:
        idx = np.arange(len(ds)) if indices is None else np.unique(np.asarray(indices, int))
        sets, by_class = {}, {}
        for i, rec in zip(idx.tolist(), ds.records(idx)):
            fixed = (rec.provenance or {}).get("set")
            if fixed in ("train", "test"):
                sets[i] = fixed
            else:
                key = hashlib.sha1(f"{seed}:{rec.hash}".encode()).hexdigest()
                by_class.setdefault(rec.structure_class or "", []).append((key, i))
        for members in by_class.values():
            members.sort()
            n_test = min(max(int(minimum), int(round(fraction * len(members)))),
                         len(members) - 1)
            for k, (_, i) in enumerate(members):
                sets[i] = "test" if k < n_test else "train"
        return sets
    finally:
        if close:
            ds.close()


def export_n2p2(dataset, path, indices=None, test_fraction=None, seed=0, sets=None):
    """Write structures to n2p2's ``input.data`` (atomically).

    Parameters
    ----------
    dataset : Dataset or path
    path : str or path
        Output file.
    indices : sequence of int, optional
        Which structures (default: all).
    test_fraction : float, optional
        Tag this fraction (rounded) of the structures ``set=test`` and the rest
        ``set=train``, chosen at random with *seed*; None writes no tags.
    seed : int
    sets : dict, optional
        index -> "train"/"test" (e.g. :func:`held_out_sets`); overrides
        ``test_fraction``.

    Returns
    -------
    dict
        ``{"structures": n, "train": n_train, "test": n_test}``.
    """
    from hpcnnp.io.n2p2 import write_data
    ds, close = _open(dataset)
    try:
        idx = np.arange(len(ds)) if indices is None else np.unique(np.asarray(indices, int))
        idx = canonical_order(ds, idx)
        if sets is not None:
            sets = {int(i): sets[int(i)] for i in idx}
        elif test_fraction is not None:
            if not 0.0 <= float(test_fraction) < 1.0:
                raise DatasetError(f"test fraction must be in [0, 1), got {test_fraction}")
            n_test = int(round(float(test_fraction) * len(idx)))
            perm = np.random.default_rng(seed).permutation(len(idx))
            test = set(idx[perm[:n_test]].tolist())
            sets = {int(i): ("test" if int(i) in test else "train") for i in idx}

        def images():
            for i, rec in _records_in_order(ds, idx):
                atoms = rec.to_atoms()
                atoms.info = {"comment": _comment(rec, int(i)), "charge": 0.0}
                if sets is not None:
                    atoms.info["set"] = sets[int(i)]
                yield atoms

        write_data(path, images())
        n_test = sum(v == "test" for v in sets.values()) if sets else 0
        return {"structures": int(len(idx)), "train": int(len(idx)) - n_test if sets else None,
                "test": n_test if sets else None}
    finally:
        if close:
            ds.close()


def export_extxyz(dataset, path, indices=None):
    """Write structures to extended XYZ (atomically) with energy, forces, stress and
    ``info`` structure_class, temperature, labeler (JSON), provenance (JSON), hash,
    dataset_index.  Returns the number written."""
    import ase.io
    ds, close = _open(dataset)
    path = Path(path)
    try:
        idx = np.arange(len(ds)) if indices is None else np.unique(np.asarray(indices, int))
        idx = canonical_order(ds, idx)
        count = 0
        with atomic_open(path) as fh:
            for i, rec in _records_in_order(ds, idx):
                atoms = rec.to_atoms()
                atoms.info = {"structure_class": rec.structure_class,
                              "temperature": rec.temperature,
                              "labeler": _json(rec.labeler), "provenance": _json(rec.provenance),
                              "hash": rec.hash, "dataset_index": int(i)}
                ase.io.write(fh, atoms, format="extxyz")
                count += 1
        return count
    finally:
        if close:
            ds.close()


# ---------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------

def _ase_reader(fmt):
    def read(path, **options):
        import ase.io
        try:
            images = ase.io.read(path, index=":", format=fmt)
        except Exception as exc:
            raise InputFileError(path, None, f"cannot read as {fmt}: {type(exc).__name__}: "
                                 f"{exc}") from None
        for k, atoms in enumerate(images):
            try:
                yield k, Record.from_atoms(atoms)
            except DatasetError as exc:
                raise InputFileError(path, None, f"frame {k}: {exc}") from None
    return read


_HARTREE_BOHR = None


def _read_cp2k(path, cell=None, **options):
    """CP2K MD output: ``PROJECT-pos-1.xyz`` (+ ``-frc-1.xyz``, ``-1.cell``); energies
    from the ``E =`` field of the frame headers (Hartree), forces in Hartree/Bohr."""
    from ase import units
    from ase.data import atomic_numbers
    path = Path(path)
    if "-pos-" not in path.name:
        raise InputFileError(path, None, "CP2K import expects the positions file "
                             "PROJECT-pos-1.xyz (with PROJECT-frc-1.xyz beside it)")
    frc = path.with_name(path.name.replace("-pos-", "-frc-"))
    if not frc.is_file():
        raise InputFileError(frc, None, "CP2K forces file not found (set MOTION/PRINT/FORCES "
                             "in the CP2K input)")
    project = path.name.split("-pos-")[0]
    cells = {}
    cell_file = path.with_name(f"{project}-1.cell")
    if cell_file.is_file():
        for ln, line in enumerate(cell_file.read_text().splitlines(), 1):
            if line.strip().startswith("#") or not line.strip():
                continue
            v = line.split()
            try:
                cells[int(v[0])] = np.array([float(x) for x in v[2:11]]).reshape(3, 3)
            except (ValueError, IndexError):
                raise InputFileError(cell_file, ln, "expected: step time Ax Ay Az Bx By Bz "
                                     "Cx Cy Cz volume") from None
    fixed_cell = None
    if cell is not None:
        c = np.array(cell, float).ravel()
        fixed_cell = np.diag(c) if c.size == 3 else c.reshape(3, 3)

    def frames(p):
        lines = p.read_text().splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            try:
                n = int(lines[i].split()[0])
            except ValueError:
                raise InputFileError(p, i + 1, "expected the number of atoms") from None
            header = lines[i + 1] if i + 1 < len(lines) else ""
            body = lines[i + 2:i + 2 + n]
            if len(body) < n:
                raise InputFileError(p, i + 1, f"frame with {n} atoms is cut short")
            syms, xyz = [], []
            for j, line in enumerate(body):
                v = line.split()
                try:
                    syms.append(v[0])
                    xyz.append([float(x) for x in v[1:4]])
                except (ValueError, IndexError):
                    raise InputFileError(p, i + 3 + j, "expected: element x y z") from None
            yield i + 1, header, syms, np.array(xyz)
            i += 2 + n

    def field_of(header, key):
        m = re.search(rf"\b{key}\s*=\s*([-+0-9.Ee]+)", header)
        return None if m is None else float(m.group(1))

    for k, (pf, ff) in enumerate(zip(frames(path), frames(frc))):
        (line, header, syms, pos), (_, _, fsyms, f) = pf, ff
        if syms != fsyms:
            raise InputFileError(frc, None, f"frame {k}: elements differ from {path.name}")
        energy = field_of(header, "E")
        if energy is None:
            raise InputFileError(path, line + 1, "no 'E = ...' energy in the frame header")
        step = field_of(header, "i")
        c = cells.get(int(step)) if step is not None and cells else None
        if c is None:
            c = fixed_cell
        if c is None:
            raise InputFileError(path, line, f"no cell for frame {k}: {cell_file.name} is "
                                 "missing; pass the cell (--cell a b c or 9 numbers)")
        try:
            numbers = [atomic_numbers[s.capitalize() if len(s) <= 2 else s] for s in syms]
        except KeyError as exc:
            raise InputFileError(path, line, f"unknown element {exc}") from None
        yield k, Record(numbers=numbers, positions=pos, cell=c, pbc=True,
                        energy=energy * units.Hartree,
                        forces=f * units.Hartree / units.Bohr,
                        provenance={"cp2k_step": None if step is None else int(step),
                                    "cp2k_time_fs": field_of(header, "time")})


#: import format -> reader(path, **options) yielding (frame index, Record)
IMPORTERS = {
    "extxyz": _ase_reader("extxyz"),
    "vasp-xml": _ase_reader("vasp-xml"),
    "vasp-out": _ase_reader("vasp-out"),
    "cp2k": _read_cp2k,
}


def detect_format(path):
    """Import format of a file from its name (see :data:`IMPORTERS`)."""
    name = Path(path).name.lower()
    if "-pos-" in name and name.endswith(".xyz"):
        return "cp2k"
    if name.endswith((".extxyz", ".xyz")):
        return "extxyz"
    if name.endswith(".xml") and "vasprun" in name:
        return "vasp-xml"
    if name.startswith("outcar"):
        return "vasp-out"
    raise DatasetError(f"{path}: cannot tell the format from the name; give one of "
                       + ", ".join(IMPORTERS))


def read_structures(path, format=None, **options):
    """Records of a file in one of the :data:`IMPORTERS` formats (list)."""
    fmt = format or detect_format(path)
    if fmt not in IMPORTERS:
        raise DatasetError(f"unknown import format {fmt!r}; known: {', '.join(IMPORTERS)}")
    if not Path(path).is_file():
        raise InputFileError(path, None, "file not found")
    return [rec for _, rec in IMPORTERS[fmt](str(path), **options)]


def import_files(dataset, paths, format=None, structure_class=None, temperature=None,
                 labeler=None, **options):
    """Read files and append their structures to a data set (created if missing).

    Class, temperature and labeler given here override what the files say; a
    structure without a class is an error (name one with *structure_class*).
    Every file is read and checked before anything is written.

    Returns
    -------
    dict
        ``{"read": n, "added": n, "duplicates": n}``.
    """
    batch = []
    for path in paths:
        fmt = format or detect_format(path)
        for k, rec in enumerate(read_structures(path, fmt, **options)):
            if structure_class is not None:
                rec.structure_class = structure_class
            if temperature is not None:
                rec.temperature = float(temperature)
            if labeler is not None:
                rec.labeler = labeler if isinstance(labeler, dict) else {"name": str(labeler)}
            if not rec.structure_class:
                raise InputFileError(path, None, f"frame {k} has no structure class; give "
                                     "one (--class NAME)")
            rec.provenance = dict(rec.provenance, imported_from=str(path), import_format=fmt,
                                  frame=k)
            try:
                rec.check(f"{path}: frame {k}")
            except DatasetError as exc:
                raise InputFileError(path, None, str(exc).split(": ", 1)[-1]) from None
            batch.append(rec)
    if isinstance(dataset, Dataset):
        added, dup = dataset.append(batch)
    else:
        with Dataset(dataset, "a") as ds:
            added, dup = ds.append(batch)
    return {"read": len(batch), "added": added, "duplicates": dup}


# ---------------------------------------------------------------------------------------
# Outliers, summary
# ---------------------------------------------------------------------------------------

def find_outliers(dataset, sigma=5.0, energy=True, forces=True):
    """Structures whose energy per atom or largest force component lies more than
    *sigma* standard deviations from the mean of their class.

    Energy: e = E/N per structure; mean and σ over the class.  Forces: mean and σ
    of all Cartesian force components of the class; a structure is flagged when
    one of its components is beyond mean ± sigma·σ.  One pass (σ includes the
    outliers themselves, so only gross outliers are caught with the default
    sigma = 5); classes with fewer than 3 structures are not tested.

    Returns
    -------
    dict
        index -> reason (str).
    """
    if not sigma > 0:
        raise DatasetError(f"sigma must be > 0, got {sigma}")
    ds, close = _open(dataset)
    try:
        classes = ds.classes
        natoms = ds.column("natoms").astype(float)
        epa = ds.energies / np.maximum(natoms, 1)
        offsets = ds.column("offset")
        allf = None
        out = {}
        for cls in sorted(set(classes)):
            idx = np.flatnonzero(classes == cls)
            if len(idx) < 3:
                continue
            if energy:
                mu, sd = epa[idx].mean(), epa[idx].std()
                if sd > 0:
                    z = np.abs(epa[idx] - mu) / sd
                    for i, zi in zip(idx, z):
                        if zi > sigma:
                            out[int(i)] = (f"energy/atom {epa[i]:.4f} eV is {zi:.1f} σ from "
                                           f"the mean {mu:.4f} eV of class {cls!r}")
            if forces:
                if allf is None:
                    allf = ds._a["forces"][:ds.n_atoms]
                comps = [allf[int(offsets[i]):int(offsets[i] + natoms[i])] for i in idx]
                allc = np.concatenate([c.ravel() for c in comps])
                mu, sd = allc.mean(), allc.std()
                if sd > 0:
                    for i, c in zip(idx, comps):
                        zmax = float(np.max(np.abs(c - mu))) / sd
                        if zmax > sigma and int(i) not in out:
                            out[int(i)] = (f"force component {np.max(np.abs(c)):.2f} eV/Å is "
                                           f"{zmax:.1f} σ from the mean of class {cls!r} "
                                           f"(σ = {sd:.3f} eV/Å)")
        return dict(sorted(out.items()))
    finally:
        if close:
            ds.close()


def filter_dataset(src, dst, sigma=5.0, energy=True, forces=True):
    """Copy *src* to a new data set *dst* without the outliers of :func:`find_outliers`.

    Returns
    -------
    dict
        ``{"kept": n, "removed": {index: reason}}``.
    """
    if Path(dst).resolve() == Path(src).resolve():
        raise DatasetError("the filtered data set must be a new file (-o OTHER.h5)")
    if Path(dst).exists():
        raise DatasetError(f"{dst} exists; remove it or choose another output")
    with Dataset(src, "r") as ds:
        bad = find_outliers(ds, sigma, energy=energy, forces=forces)
        keep = [i for i in range(len(ds)) if i not in bad]
        with atomic_path(dst) as tmp:
            with Dataset(tmp, "a") as out:
                batch = []
                for rec in ds.records(keep):
                    batch.append(rec)
                    if len(batch) >= 512:
                        out.append(batch, dedup=False)
                        batch = []
                out.append(batch, dedup=False)
    return {"kept": len(keep), "removed": bad}


def summary(dataset):
    """Per-class statistics of a data set (dict; see ``hpcnnp dataset info``)."""
    ds, close = _open(dataset)
    try:
        n = len(ds)
        classes = ds.classes
        natoms = ds.column("natoms")
        epa = ds.energies / np.maximum(natoms, 1)
        temps = ds.temperatures
        stress = ds.column("stress")
        labelers = ds.column("labeler")
        offsets = ds.column("offset")
        out = {"path": str(ds.path), "structures": n, "atoms": ds.n_atoms,
               "file_bytes": ds.path.stat().st_size, "classes": {}}
        f2_struct = np.zeros(n)
        for start in range(0, ds.n_atoms, 1 << 20):          # bounded memory
            stop = min(ds.n_atoms, start + (1 << 20))
            f = ds._a["forces"][start:stop]
            owner = np.searchsorted(offsets, np.arange(start, stop), side="right") - 1
            np.add.at(f2_struct, owner, np.sum(f * f, axis=1))
        for cls in sorted(set(classes)):
            idx = np.flatnonzero(classes == cls)
            f2 = float(f2_struct[idx].sum())
            nf = int(3 * natoms[idx].sum())
            names = sorted({labelers[i].get("name", "?") for i in idx})
            out["classes"][cls] = {
                "structures": int(len(idx)),
                "atoms_min": int(natoms[idx].min()), "atoms_max": int(natoms[idx].max()),
                "temperatures": sorted({float(t) for t in temps[idx] if not np.isnan(t)}),
                "energy_per_atom_mean": float(epa[idx].mean()),
                "energy_per_atom_std": float(epa[idx].std()),
                "force_rms": math.sqrt(f2 / nf) if nf else 0.0,
                "with_stress": int(np.sum(~np.isnan(stress[idx, 0]))),
                "labelers": names,
            }
        return out
    finally:
        if close:
            ds.close()
