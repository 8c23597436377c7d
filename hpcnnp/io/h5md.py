"""H5MD trajectories: the file the MD driver writes and the analyses read.

H5MD (de Buyl, Colberg, Höfling, Comput. Phys. Commun. 185, 1546 (2014),
doi:10.1016/j.cpc.2014.01.018; https://nongnu.org/h5md/) is a layout of HDF5
groups and datasets for particle trajectories.  MDAnalysis, OVITO and VMD
plugins read it.  hpcnnp writes H5MD 1.1 as follows (units are the ``unit``
attributes)::

    /h5md                               attrs version = [1, 1]
    /h5md/author                        attrs name
    /h5md/creator                       attrs name = "hpcnnp", version
    /h5md/modules/units                 attrs version = [1, 0] ("unit" attributes)
    /particles/trajectory/species       int32 (N,)        atomic numbers
    /particles/trajectory/mass          float64 (N,)      amu
    /particles/trajectory/box           attrs dimension = 3, boundary = periodic x 3
    /particles/trajectory/box/edges/    step (n,) int64, time (n,) float64 ps,
                                        value (n, 3, 3) Angstrom: cell vectors as rows
    /particles/trajectory/position/     step, time, value (n, N, 3) Angstrom (wrapped)
    /particles/trajectory/image/        step, time, value (n, N, 3) int32
    /particles/trajectory/velocity/     step, time, value (n, N, 3) Angstrom ps-1
    /particles/trajectory/force/        step, time, value (n, N, 3) kJ mol-1 Angstrom-1
    /observables/<name>/                step, time, value (n,)  e.g. potential_energy
                                        (eV), temperature (K), pressure (bar), volume
    /parameters                         attrs hpcnnp = JSON: atoms.info of the structure
                                        (structure_class, planes, sigma, ...) + provenance

The unwrapped (continuous) position of an atom is ``position + image @ edges``
(see :meth:`H5MDTrajectory.unwrapped`); MSDs and diffusivities need it.

Readable by MDAnalysis as it is
-------------------------------
``MDAnalysis.Universe("traj.h5")`` opens the file without a topology: MDAnalysis
builds its minimal topology only from a particles group named ``trajectory`` (hence
the name), and converts units only from the unit strings it knows -- it knows no
eV-based force unit, so forces are *stored* in kJ mol⁻¹ Å⁻¹ (1 eV/Å = 96.485 kJ
mol⁻¹ Å⁻¹, CODATA 2018) and converted on writing and reading: :class:`H5MDWriter`
takes and :class:`H5MDTrajectory` returns eV/Å.  MDAnalysis has no H5MD topology
reader, so :func:`mdanalysis_universe` adds element names and masses from the file.

Files of the earlier layout (``/particles/all``, forces in ``eV Angstrom-1``) are
read the same way, and :class:`H5MDWriter` appends to them in their own layout and
units (a resumed run keeps one layout per file).  The reader converts every stored
unit it knows (:data:`READ_UNITS`) to hpcnnp's metal units: Å, ps, Å/ps, eV/Å.

Atomic frames and killed writers
--------------------------------
Every ``step`` and ``time`` dataset in the file is one and the same dataset (HDF5
hard links, which H5MD allows): the length of ``step`` is the number of complete
frames.  :meth:`H5MDWriter.write_frame` first appends the frame's data to every
``value`` dataset and flushes, then extends ``step``/``time`` and flushes again.
A writer killed at any moment therefore leaves a file whose first ``len(step)``
frames are complete; a partly written frame beyond them is ignored by
:class:`H5MDTrajectory` and removed when the file is opened again with
``mode="a"``.  Committed data is never modified (a chunk that holds several small
frames is rewritten with the same bytes for the committed ones), so a reader only
ever needs HDF5's metadata as of one of the flushes.  Tested by killing writers
with SIGKILL (``tests/md/test_h5md.py``).

Chunking
--------
Per-atom datasets are chunked as ``(k, N, 3)``: all atoms of ``k`` consecutive
frames, with ``k = max(1, 512 KiB // frame_bytes)`` (capped at 1024).  A
17,000-atom frame of float64 positions is 408 KB, so production trajectories get
one frame per chunk: appending a frame writes exactly one new chunk (no
read-modify-write of earlier data), a reader of one frame (MDAnalysis, OVITO)
touches one chunk, the chunk fits HDF5's default 1 MiB chunk cache, and readers
that stream frames in blocks (:meth:`H5MDTrajectory.iter_chunks`) read whole
contiguous chunks.  Small systems get several frames per chunk so that chunks are
not tiny.  ``step``/``time``/observables use chunks of 1024 values, box edges
chunks of 1024 frames.

Example
-------
>>> from hpcnnp.io import h5md                                       # doctest: +SKIP
>>> with h5md.H5MDWriter("traj.h5", atoms, observables=("temperature",)) as w:
...     w.write_frame(0, 0.0, atoms.positions, atoms.cell.array,
...                   image=np.zeros((len(atoms), 3), int),
...                   observables={"temperature": 300.0})
>>> with h5md.H5MDTrajectory("traj.h5") as t:
...     for idx, d in t.iter_chunks(fields=("position", "image")):
...         d["position"], d["box"]
>>> import MDAnalysis as mda
>>> u = mda.Universe("traj.h5")               # forces in kJ/(mol Å), MDAnalysis' unit
"""

from __future__ import annotations

import getpass
import json
import os

import h5py
import numpy as np
from ase import Atoms, units
from ase.data import atomic_masses, atomic_numbers, chemical_symbols
from ase.units import create_units

from hpcnnp import __version__
from hpcnnp.io.jsonvalues import json_default
from hpcnnp.io.trajectory import Trajectory, TrajectoryError

__all__ = ["H5MDWriter", "H5MDTrajectory", "H5MDError", "FIELDS", "OBSERVABLE_UNITS",
           "mdanalysis_universe", "PARTICLE_GROUP", "LEGACY_PARTICLE_GROUPS", "READ_UNITS",
           "EV_TO_KJ_PER_MOL"]

#: name of the particles group (H5MD allows several; hpcnnp writes one).  MDAnalysis
#: builds a topology from an H5MD file alone only for this name.
PARTICLE_GROUP = "trajectory"
#: particles groups of earlier hpcnnp files (read, and appended to in their layout)
LEGACY_PARTICLE_GROUPS = ("all",)

_CODATA = create_units("2018")
#: 1 eV in kJ/mol (CODATA 2018), the factor between hpcnnp's and the stored force unit
EV_TO_KJ_PER_MOL = _CODATA["mol"] / _CODATA["kJ"]

#: per-atom time series: name -> (numpy dtype, unit attribute written or None); every
#: unit is one MDAnalysis' H5MD reader knows
FIELDS = {
    "position": (np.float64, "Angstrom"),
    "image": (np.int32, None),
    "velocity": (np.float64, "Angstrom ps-1"),
    "force": (np.float64, "kJ mol-1 Angstrom-1"),
}

#: stored unit -> factor to hpcnnp's unit (Å, Å/ps, eV/Å) of every field read
READ_UNITS = {
    "position": {"Angstrom": 1.0, "angstrom": 1.0, "A": 1.0, "nm": 10.0, "pm": 0.01},
    "velocity": {"Angstrom ps-1": 1.0, "A ps-1": 1.0, "Angstrom fs-1": 1e3,
                 "A fs-1": 1e3, "nm ps-1": 10.0, "m s-1": 0.01},
    "force": {"eV Angstrom-1": 1.0, "eV A-1": 1.0,
              "kJ mol-1 Angstrom-1": 1.0 / EV_TO_KJ_PER_MOL,
              "kJ mol-1 nm-1": 0.1 / EV_TO_KJ_PER_MOL,
              "kcal mol-1 Angstrom-1": 4.184 / EV_TO_KJ_PER_MOL,
              "kcal mol-1 A-1": 4.184 / EV_TO_KJ_PER_MOL},
}
#: what H5MDTrajectory returns
RETURN_UNITS = {"position": "Angstrom", "velocity": "Angstrom ps-1",
                "force": "eV Angstrom-1", "image": None}

#: units of the observables the MD driver writes (others are stored without unit)
OBSERVABLE_UNITS = {
    "potential_energy": "eV",
    "kinetic_energy": "eV",
    "total_energy": "eV",
    "conserved_energy": "eV",
    "temperature": "K",
    "pressure": "bar",
    "volume": "Angstrom3",
    "n_extrapolation_warnings": None,
}

TIME_UNIT = "ps"
LENGTH_UNIT = "Angstrom"
MASS_UNIT = "amu"
_CHUNK_BYTES = 512 * 1024
_SERIES_CHUNK = 1024
_MAX_ATTR_BYTES = 60000


class H5MDError(TrajectoryError):
    """A trajectory file that cannot be written or read as asked (names the file)."""


def metadata_json(info):
    """JSON text of a metadata dict (NumPy values become lists/numbers)."""
    return json.dumps(info or {}, default=json_default, sort_keys=True)


def _str_attr(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def unit_factor(path, field, unit):
    """Factor converting ``field`` stored in ``unit`` to hpcnnp's unit (1 if none)."""
    if unit is None or field not in READ_UNITS:
        return 1.0
    unit = _str_attr(unit).strip()
    table = READ_UNITS[field]
    if unit not in table:
        raise H5MDError(f"{path}: {field} unit {unit!r} not supported "
                        f"({', '.join(table)})")
    return table[unit]


def particle_group_name(path, particles):
    """The particles group hpcnnp reads: ``trajectory``, a legacy name, else the first."""
    for name in (PARTICLE_GROUP,) + LEGACY_PARTICLE_GROUPS:
        if name in particles:
            return name
    if not len(particles):
        raise H5MDError(f"{path}: empty /particles group (not an H5MD trajectory)")
    return sorted(particles)[0]


def frames_per_chunk(n_atoms, itemsize=8):
    """Frames per chunk of an (n, N, 3) dataset (see the module docstring)."""
    frame_bytes = max(1, int(n_atoms) * 3 * itemsize)
    return int(min(1024, max(1, _CHUNK_BYTES // frame_bytes)))


class H5MDWriter:
    """Append frames to an H5MD 1.1 trajectory (one writer per file, MPI rank 0).

    Parameters
    ----------
    path : str or Path
        File to write (``.h5``/``.h5md``).
    atoms : ase.Atoms
        The atoms in the order of every frame: species (atomic numbers) and masses
        (amu) come from it, ``atoms.info`` becomes the metadata.
    fields : sequence of str
        Per-atom time series to store: ``"position"`` (always), ``"image"``,
        ``"velocity"`` (Å/ps), ``"force"`` (eV/Å).
    observables : sequence of str
        Names of scalar observables written with each frame (units from
        :data:`OBSERVABLE_UNITS`).  More may be added while the file has no frame.
    mode : {"w", "a"}
        ``"w"`` creates (replaces) the file; ``"a"`` appends to an existing one
        (same atoms and fields; a partly written last frame is removed).
    chunk_frames : int, optional
        Frames per chunk of the per-atom datasets (default: see module docstring).
    metadata : dict, optional
        Merged into ``atoms.info`` for ``/parameters`` (e.g. provenance).
    author : str, optional
        ``/h5md/author`` name (default: the user name).
    compression : str, optional
        HDF5 filter of the per-atom datasets (e.g. ``"gzip"``); off by default
        (positions hardly compress, and an uncompressed chunk is rewritten in place).
    """

    def __init__(self, path, atoms, fields=("position", "image"), observables=(), mode="w",
                 chunk_frames=None, *, metadata=None, author=None, compression=None):
        self.path = str(path)
        fields = tuple(dict.fromkeys(fields))
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise H5MDError(f"{self.path}: unknown field(s) {', '.join(unknown)} "
                            f"(known: {', '.join(FIELDS)})")
        if "position" not in fields:
            fields = ("position",) + fields
        if mode not in ("w", "a"):
            raise H5MDError(f"{self.path}: mode must be 'w' or 'a', got {mode!r}")
        self.n_atoms = len(atoms)
        if self.n_atoms == 0:
            raise H5MDError(f"{self.path}: no atoms")
        self._numbers = np.asarray(atoms.get_atomic_numbers(), dtype=np.int32)
        self._compression = compression
        self._chunk = (int(chunk_frames) if chunk_frames else frames_per_chunk(self.n_atoms))
        if self._chunk < 1:
            raise H5MDError(f"{self.path}: chunk_frames must be >= 1")
        try:
            if mode == "a" and os.path.exists(self.path):
                self._f = h5py.File(self.path, "a")
                self._open_existing(fields)
            else:
                self._f = h5py.File(self.path, "w")
                self._create(atoms, fields, metadata, author)
        except OSError as exc:
            raise H5MDError(f"{self.path}: cannot open for writing ({exc})") from None
        for name in observables:
            self._add_observable(name)
        self._f.flush()

    # -------------------------------------------------------------- layout
    def _create(self, atoms, fields, metadata, author):
        f = self._f
        h = f.create_group("h5md")
        h.attrs["version"] = np.array([1, 1], dtype=np.int32)
        try:
            user = author or getpass.getuser()
        except Exception:  # pragma: no cover - no user name (containers)
            user = "unknown"
        h.create_group("author").attrs["name"] = user
        c = h.create_group("creator")
        c.attrs["name"] = "hpcnnp"
        c.attrs["version"] = __version__
        u = h.create_group("modules/units")
        u.attrs["version"] = np.array([1, 0], dtype=np.int32)

        self._group = PARTICLE_GROUP
        g = f.create_group(f"particles/{PARTICLE_GROUP}")
        g.create_dataset("species", data=self._numbers)
        m = g.create_dataset("mass", data=np.asarray(atoms.get_masses(), dtype=np.float64))
        m.attrs["unit"] = MASS_UNIT
        box = g.create_group("box")
        box.attrs["dimension"] = np.int32(3)
        box.attrs["boundary"] = np.array([b"periodic"] * 3)
        edges = box.create_group("edges")
        step = edges.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64,
                                    chunks=(_SERIES_CHUNK,))
        time = edges.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64,
                                    chunks=(_SERIES_CHUNK,))
        time.attrs["unit"] = TIME_UNIT
        v = edges.create_dataset("value", shape=(0, 3, 3), maxshape=(None, 3, 3),
                                 dtype=np.float64, chunks=(_SERIES_CHUNK, 3, 3))
        v.attrs["unit"] = LENGTH_UNIT
        for name in fields:
            dtype, unit = FIELDS[name]
            s = g.create_group(name)
            s["step"], s["time"] = step, time                      # hard links
            v = s.create_dataset("value", shape=(0, self.n_atoms, 3),
                                 maxshape=(None, self.n_atoms, 3), dtype=dtype,
                                 chunks=(self._chunk, self.n_atoms, 3),
                                 compression=self._compression)
            if unit:
                v.attrs["unit"] = unit
        f.create_group("observables")
        info = dict(atoms.info)
        info.update(metadata or {})
        _write_metadata(f, info)
        self.fields = tuple(fields)
        self._scale = {k: 1.0 / unit_factor(self.path, k, FIELDS[k][1]) for k in fields}
        self._step, self._time = step, time
        self._n = 0
        self._last_step = None

    def _open_existing(self, fields):
        f = self._f
        parts = f.get("particles")
        self._group = particle_group_name(self.path, parts) if parts is not None \
            else PARTICLE_GROUP
        g = f.get(f"particles/{self._group}")
        if g is None or "box" not in g or "position" not in g:
            raise H5MDError(f"{self.path}: not an hpcnnp H5MD trajectory "
                            f"(no /particles/{PARTICLE_GROUP}/position)")
        numbers = np.asarray(g["species"][()])
        if numbers.shape != self._numbers.shape or np.any(numbers != self._numbers):
            raise H5MDError(f"{self.path}: the file holds other atoms ({len(numbers)}) than "
                            f"the ones given ({self.n_atoms}); cannot append")
        have = tuple(k for k in FIELDS if k in g)
        if set(fields) - set(have):
            raise H5MDError(f"{self.path}: cannot append field(s) "
                            f"{', '.join(sorted(set(fields) - set(have)))}: the file has "
                            f"{', '.join(have)}")
        self.fields = have
        # append in the file's own units (files of the earlier layout: eV/Å forces)
        self._scale = {k: 1.0 / unit_factor(self.path, k, g[k]["value"].attrs.get("unit"))
                       for k in have}
        self._step = g["box/edges/step"]
        self._time = g["box/edges/time"]
        self._n = min(len(self._step), len(self._time))
        self._discard_beyond(self._n)
        self._last_step = int(self._step[self._n - 1]) if self._n else None

    def _values(self):
        """Every dataset with one row per frame (except step/time)."""
        g = self._f[f"particles/{self._group}"]
        out = [g["box/edges/value"]] + [g[k]["value"] for k in self.fields]
        obs = self._f["observables"]
        out += [obs[k]["value"] for k in obs]
        return out

    def _discard_beyond(self, n):
        """Shrink every dataset to n frames (commit point first)."""
        for ds in (self._step, self._time):
            if len(ds) > n:
                ds.resize(n, axis=0)
        self._f.flush()
        for ds in self._values():
            if ds.shape[0] > n:
                ds.resize(n, axis=0)
        self._f.flush()

    def _add_observable(self, name):
        obs = self._f["observables"]
        if name in obs:
            return
        if self._n:
            raise H5MDError(f"{self.path}: observable {name!r} is new, but the file already "
                            f"has {self._n} frames; declare observables when creating it")
        s = obs.create_group(name)
        s["step"], s["time"] = self._step, self._time
        v = s.create_dataset("value", shape=(0,), maxshape=(None,), dtype=np.float64,
                             chunks=(_SERIES_CHUNK,))
        unit = OBSERVABLE_UNITS.get(name)
        if unit:
            v.attrs["unit"] = unit

    @property
    def n_frames(self):
        """Number of complete frames in the file."""
        return self._n

    @property
    def observables(self):
        return tuple(self._f["observables"])

    @property
    def last_step(self):
        """Step of the last complete frame (None if there is none)."""
        return self._last_step

    # -------------------------------------------------------------- writing
    def _array(self, name, data, dtype):
        a = np.asarray(data, dtype=dtype)
        if a.shape != (self.n_atoms, 3):
            raise H5MDError(f"{self.path}: {name} has shape {np.shape(data)}, expected "
                            f"({self.n_atoms}, 3)")
        return a

    def write_frame(self, step, time_ps, positions, box, image=None, velocity=None,
                    force=None, observables=None):
        """Append one frame (atomically; see the module docstring).

        Parameters
        ----------
        step : int
            MD step; must exceed the last frame's step.
        time_ps : float, ps
        positions : (N, 3) Å
            Positions, normally wrapped into the cell.
        box : (3, 3) Å
            Cell vectors as rows.
        image : (N, 3) int, optional
            Periodic image flags (required when the file stores ``image``).
        velocity : (N, 3) Å/ps, optional
        force : (N, 3) eV/Å, optional
        observables : dict name -> float, optional
            Missing names are stored as NaN; new names only before the first frame.
        """
        step = int(step)
        if self._last_step is not None and step <= self._last_step:
            raise H5MDError(f"{self.path}: step {step} does not follow the last frame's "
                            f"step {self._last_step}")
        box = np.asarray(box, dtype=np.float64)
        if box.shape != (3, 3):
            raise H5MDError(f"{self.path}: box must be 3x3 (cell vectors as rows), got "
                            f"shape {box.shape}")
        given = {"position": positions, "image": image, "velocity": velocity, "force": force}
        data = {}
        for name in self.fields:
            if given[name] is None:
                raise H5MDError(f"{self.path}: the file stores {name!r}, but write_frame "
                                "got none")
            data[name] = self._array(name, given[name], FIELDS[name][0])
            if self._scale[name] != 1.0:
                data[name] = data[name] * self._scale[name]
        observables = dict(observables or {})
        obs = self._f["observables"]
        for name in observables:
            if name not in obs:
                self._add_observable(name)
        n = self._n
        g = self._f[f"particles/{self._group}"]
        # 1. the frame's data, beyond the committed length
        e = g["box/edges/value"]
        e.resize(n + 1, axis=0)
        e[n] = box
        for name, a in data.items():
            ds = g[name]["value"]
            ds.resize(n + 1, axis=0)
            ds[n] = a
        for name in obs:
            ds = obs[name]["value"]
            ds.resize(n + 1, axis=0)
            ds[n] = float(observables.get(name, np.nan))
        self._f.flush()
        # 2. commit: one shared step/time pair for every element
        self._step.resize(n + 1, axis=0)
        self._time.resize(n + 1, axis=0)
        self._step[n] = step
        self._time[n] = float(time_ps)
        self._f.flush()
        self._n = n + 1
        self._last_step = step

    def truncate_after(self, step):
        """Drop every frame whose step is larger than *step*; returns how many."""
        steps = self._step[: self._n]
        keep = int(np.searchsorted(steps, int(step), side="right"))
        dropped = self._n - keep
        self._discard_beyond(keep)
        self._n = keep
        self._last_step = int(steps[keep - 1]) if keep else None
        return dropped

    def flush(self):
        self._f.flush()

    def close(self):
        if getattr(self, "_f", None) is not None and self._f.id.valid:
            self._f.flush()
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _write_metadata(f, info):
    text = metadata_json(info)
    p = f.require_group("parameters")
    if len(text.encode()) <= _MAX_ATTR_BYTES:
        p.attrs["hpcnnp"] = text
    else:                        # too large for an attribute: a string dataset
        p.create_dataset("hpcnnp", data=text)


class H5MDTrajectory(Trajectory):
    """Read-only view of an H5MD trajectory (hpcnnp's or another writer's).

    The file member of the trajectory family (:mod:`hpcnnp.io.trajectory`).  Frames
    are read lazily.  ``n_frames`` counts complete frames only (the length of
    ``step``), so a file of a killed or still running writer can be read.  Stored
    units are converted to hpcnnp's metal units (see the module docstring).

    Attributes
    ----------
    n_frames, n_atoms : int
    species : list of str
        Element symbol of every atom.
    masses : ndarray (N,), amu
    metadata : dict
        ``/parameters`` JSON (atoms.info of the structure, provenance).
    steps : ndarray (n_frames,) int
    times : ndarray (n_frames,) float, ps
    fields : tuple of str
        Per-atom series present (``position``, ``image``, ``velocity``, ``force``).
    observables : tuple of str
    units : dict field/observable -> unit string of the values returned
    stored_units : dict field -> unit string in the file
    """

    time_unit = TIME_UNIT
    error = H5MDError

    def __init__(self, path):
        self.path = self.name = str(path)
        if not os.path.exists(self.path):
            raise H5MDError(f"{self.path}: no such trajectory file")
        self._f = _open_read(self.path)
        f = self._f
        parts = f.get("particles")
        if parts is None or not len(parts):
            self.close()
            raise H5MDError(f"{self.path}: no /particles group (not an H5MD file)")
        name = particle_group_name(self.path, parts)
        self._g = g = parts[name]
        if "position" not in g:
            self.close()
            raise H5MDError(f"{self.path}: /particles/{name} has no position")
        self.fields = tuple(k for k in FIELDS if k in g and "value" in g[k])
        self.n_atoms = int(g["position/value"].shape[1])
        self.observables = tuple(f["observables"]) if "observables" in f else ()
        self.refresh()
        self._read_atoms()
        self.metadata = _read_metadata(f)
        self.stored_units, self.units, self._factor = {}, {}, {}
        for k in self.fields:
            u = g[k]["value"].attrs.get("unit")
            self.stored_units[k] = None if u is None else _str_attr(u)
            self._factor[k] = unit_factor(self.path, k, u)
            self.units[k] = RETURN_UNITS[k] if u is not None else None
        e = self._box_group()
        self._factor["box"] = unit_factor(
            self.path, "position", e["value"].attrs.get("unit")
            if e is not None and hasattr(e, "keys") else None)
        for k in self.observables:
            u = f["observables"][k]["value"].attrs.get("unit")
            self.units[k] = None if u is None else _str_attr(u)

    def _read_atoms(self):
        """Species (symbols), atomic numbers and masses from the file."""
        sp = self._fixed("species")
        if sp is None:
            self._numbers = np.zeros(self.n_atoms, dtype=np.int32)
            self.species = ["X"] * self.n_atoms
        elif sp.dtype.kind in "iu":
            self._numbers = np.asarray(sp, dtype=np.int32)
            self.species = [chemical_symbols[int(z)] for z in sp]
        else:
            self.species = [_str_attr(s) for s in sp]
            self._numbers = np.array([atomic_numbers.get(s, 0) for s in self.species])
        m = self._fixed("mass")
        self.masses = (np.asarray(m, dtype=np.float64) if m is not None
                       else atomic_masses[self._numbers])

    def _fixed(self, name):
        if name not in self._g:
            return None
        obj = self._g[name]
        if hasattr(obj, "keys"):                     # time series: first frame
            v = obj["value"][()]
            return v[0] if v.ndim == 2 else v
        return obj[()]

    def _box_group(self):
        return self._g["box"].get("edges")

    def refresh(self):
        """Re-read the number of complete frames (the file may grow while read)."""
        g = self._g
        series = g["position"]
        n = min(len(series["step"]), len(series["time"]),
                *(g[k]["value"].shape[0] for k in self.fields))
        e = self._box_group()
        if e is not None and hasattr(e, "keys"):
            n = min(n, e["value"].shape[0])
        self.n_frames = int(n)
        self.steps = np.asarray(series["step"][:n], dtype=np.int64)
        t = series["time"]
        self.times = np.asarray(t[:n], dtype=np.float64) * _time_factor(t.attrs.get("unit"))
        return self.n_frames

    # -------------------------------------------------------------- access
    def _box(self, sel, count):
        e = self._box_group()
        if e is None:
            return np.full((count, 3, 3), np.nan)
        if hasattr(e, "keys"):
            b = np.asarray(e["value"][sel], dtype=np.float64)
        else:                                         # time-independent box
            b = np.broadcast_to(np.asarray(e[()], dtype=np.float64),
                                (count,) + e.shape).copy()
        if b.ndim == 2:                               # edge lengths of a cuboid
            b = np.stack([np.diag(x) for x in b])
        return b * self._factor["box"] if self._factor["box"] != 1.0 else b

    def _field(self, name, sel):
        v = self._g[name]["value"][sel]
        f = self._factor[name]
        return v * f if f != 1.0 else v

    def frame(self, i):
        """One frame: dict with ``position``, ``box``, ``step``, ``time`` (ps) and the
        stored ``image``/``velocity``/``force``."""
        i = self._index(i)
        out = {"box": self._box(slice(i, i + 1), 1)[0], "step": int(self.steps[i]),
               "time": float(self.times[i])}
        for name in self.fields:
            out[name] = self._field(name, i)
        return out

    def iter_chunks(self, start=0, stop=None, step=1, chunk=64, fields=("position", "image")):
        """Yield ``(frame_indices, arrays)`` over frames ``start:stop:step``.

        ``arrays`` holds ``box`` (n, 3, 3) and each requested field stacked over
        the frames of the block (at most *chunk* frames per block).
        """
        self._check_fields(fields)
        frames = np.arange(self.n_frames)[slice(start, stop, step)]
        step = int(step or 1)
        if step < 0:
            raise H5MDError("iter_chunks: step must be positive")
        chunk = max(1, int(chunk))
        for lo in range(0, len(frames), chunk):
            idx = frames[lo:lo + chunk]
            sel = slice(int(idx[0]), int(idx[-1]) + 1, step)
            out = {"box": self._box(sel, len(idx))}
            for name in fields:
                out[name] = self._field(name, sel)
            yield idx, out

    def observable(self, name):
        """``(steps, times (ps), values)`` of an observable."""
        obs = self._f.get("observables")
        if obs is None or name not in obs:
            raise H5MDError(f"{self.path}: no observable {name!r} "
                            f"(available: {', '.join(self.observables) or 'none'})")
        g = obs[name]
        n = min(self.n_frames, len(g["step"]), g["value"].shape[0])
        t = g["time"]
        return (np.asarray(g["step"][:n], dtype=np.int64),
                np.asarray(t[:n], dtype=np.float64) * _time_factor(t.attrs.get("unit")),
                np.asarray(g["value"][:n]))

    def atoms(self, i):
        """Frame *i* as ase.Atoms (positions, cell, masses; velocities in ASE units;
        ``info``: ``step`` and ``time_ps``)."""
        fr = self.frame(i)
        a = Atoms(numbers=self._numbers, positions=fr["position"], cell=fr["box"], pbc=True,
                  masses=self.masses)
        if "velocity" in fr:
            a.set_velocities(fr["velocity"] / (1000.0 * units.fs))
        a.info.update(step=fr["step"], time_ps=fr["time"])
        return a

    def close(self):
        if getattr(self, "_f", None) is not None and self._f.id.valid:
            self._f.close()


def _open_read(path):
    """h5py file opened read-only (without HDF5 file locking if a writer holds it)."""
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if "lock" not in str(exc).lower():
            raise H5MDError(f"{path}: cannot open as HDF5 ({exc})") from None
    try:   # a running writer holds the lock: read its committed frames anyway
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise H5MDError(f"{path}: cannot open as HDF5 ({exc})") from None


def _time_factor(unit):
    """Factor converting a stored time to ps."""
    if unit is None:
        return 1.0
    u = _str_attr(unit).strip()
    factors = {"ps": 1.0, "fs": 1e-3, "ns": 1e3, "s": 1e12}
    if u not in factors:
        raise H5MDError(f"time unit {u!r} not supported (ps, fs, ns, s)")
    return factors[u]


def _read_metadata(f):
    p = f.get("parameters")
    if p is None:
        return {}
    text = p.attrs.get("hpcnnp")
    if text is None and "hpcnnp" in p and not hasattr(p["hpcnnp"], "keys"):
        text = p["hpcnnp"][()]
    if text is None:
        return {}
    try:
        return json.loads(_str_attr(text))
    except ValueError:
        return {"_unparsed": _str_attr(text)}


def mdanalysis_universe(path, **kwargs):
    """An ``MDAnalysis.Universe`` of an hpcnnp H5MD file, with elements and masses.

    ``MDAnalysis.Universe("traj.h5md")`` opens hpcnnp's files by itself (MDAnalysis
    recognises H5MD by the ``.h5md`` extension; other names need this helper), but
    builds only a minimal topology (atoms without names or masses): MDAnalysis has no
    H5MD topology reader.  This helper adds the element symbols (as ``names``,
    ``types`` and ``elements``) and masses stored in the file and loads the
    trajectory with ``format="H5MD"``, whatever the file name.  Nothing of MDAnalysis
    is patched.  kwargs go to the reader.

    Raises
    ------
    H5MDError
        A file of the earlier layout with forces in eV/Å, a unit MDAnalysis does not
        know (hpcnnp's own reader opens it).
    """
    import MDAnalysis as mda   # optional dependency (the ``test`` extra)

    with H5MDTrajectory(path) as t:
        n, species, masses = t.n_atoms, list(t.species), t.masses
        force_unit = t.stored_units.get("force")
    if force_unit is not None and force_unit.startswith("eV"):
        raise H5MDError(f"{path}: forces stored in {force_unit!r} (the layout before "
                        "hpcnnp stored kJ mol-1 Angstrom-1), a unit MDAnalysis does not "
                        "know; read it with hpcnnp.io.h5md.H5MDTrajectory")
    u = mda.Universe.empty(n, trajectory=False)
    for attr, values in (("names", species), ("types", species), ("elements", species),
                         ("masses", masses)):
        u.add_TopologyAttr(attr, values)
    u.load_new(os.fspath(path), format="H5MD", **kwargs)
    return u
