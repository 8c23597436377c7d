"""One adapter for every kind of trajectory the analyses read.

:func:`as_trajectory` turns

* an open ``hpcnnp.io.h5md.H5MDTrajectory`` (production trajectories, H5MD 1.1),
* the path of an H5MD file (opened read-only with ``H5MDTrajectory``),
* a list of ``ase.Atoms`` (e.g. read with ``ase.io.read(..., index=":")``), or
* an :class:`ArrayTrajectory` (NumPy arrays; tests and small data)

into one read-only interface: ``n_frames``, ``n_atoms``, ``species`` (array of str,
one per atom), ``masses`` (amu), ``metadata`` (dict; the builders' ``atoms.info``,
e.g. ``metadata["planes"]``), ``steps``, ``times`` (fs), ``fields`` and
``iter_chunks(start, stop, step, chunk, fields)`` yielding ``(frame_indices, arrays)``
with stacked ``position`` (Å), ``box`` (rows = cell edge vectors, Å), ``image``
(integer periodic images), ``velocity`` (Å/fs).

Units: Å, fs, amu (hpcnnp's units).  H5MD files store times in ps and velocities in
Å/ps (metal units, with ``unit`` attributes); the adapter converts them to fs and
Å/fs.  Positions in an H5MD file are usually wrapped
into the cell with the image flags stored beside them; the unwrapped (continuous)
position is ``position + image @ box`` (see :meth:`TrajectoryAdapter.unwrapped`).
"""

from __future__ import annotations

import os

import numpy as np

from hpcnnp.errors import HpcnnpError

__all__ = ["as_trajectory", "ArrayTrajectory", "TrajectoryAdapter", "open_h5md",
           "TrajectoryError"]

#: per-atom, per-frame arrays a trajectory may hold
FRAME_FIELDS = ("position", "image", "velocity", "force")


#: time unit -> fs
_TIME_TO_FS = {"fs": 1.0, "ps": 1e3, "ns": 1e6}
#: velocity unit -> Å/fs
_VELOCITY_TO_A_FS = {"Angstrom fs-1": 1.0, "A fs-1": 1.0, "Angstrom ps-1": 1e-3,
                     "A ps-1": 1e-3}


class TrajectoryError(HpcnnpError, ValueError):
    """A trajectory that cannot be read as given."""


def open_h5md(path):
    """Open an H5MD file read-only with :class:`hpcnnp.io.h5md.H5MDTrajectory`."""
    from hpcnnp.io.h5md import H5MDTrajectory

    path = os.fspath(path)
    if not os.path.exists(path):
        raise TrajectoryError(f"{path}: no such trajectory file")
    return H5MDTrajectory(path)


class ArrayTrajectory:
    """A trajectory held in NumPy arrays (the in-memory counterpart of H5MD).

    Parameters
    ----------
    positions : array (n_frames, n_atoms, 3) or (n_atoms, 3), Å
        Positions (wrapped or not; with ``image``, the unwrapped position is
        ``position + image @ box``; without, positions are taken as continuous).
    box : array (3, 3), (n_frames, 3, 3) or (3,), Å
        Cell edge vectors as rows (one box for all frames, one per frame, or the
        lengths of an orthorhombic box).
    species : sequence of str, length n_atoms
        Element symbol of every atom.
    image : int array like positions, optional
        Periodic image flags.
    velocities : array like positions, Å/fs, optional
    times : array (n_frames,), fs, optional
        Default ``steps * dt``.
    dt : float, fs
        Time between frames when ``times`` is not given.
    steps : int array (n_frames,), optional
        MD step of every frame (default 0, 1, 2, ...).
    masses : array (n_atoms,), amu, optional
        Default: ASE's atomic masses.
    metadata : dict, optional
        Like ``atoms.info`` of hpcnnp's builders (``planes``, ``sigma``,
        ``structure_class``).
    name : str
        Name used in error messages.
    """

    def __init__(self, positions, box, species, *, image=None, velocities=None,
                 times=None, dt=1.0, steps=None, masses=None, metadata=None,
                 name="<array trajectory>"):
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim == 2:
            pos = pos[None]
        if pos.ndim != 3 or pos.shape[2] != 3:
            raise TrajectoryError(f"{name}: positions must have shape (n_frames, n_atoms, "
                                  f"3), got {np.shape(positions)}")
        n_frames, n_atoms = pos.shape[:2]
        box = np.asarray(box, dtype=np.float64)
        if box.shape == (3,):
            box = np.diag(box)
        if box.shape == (3, 3):
            box = np.broadcast_to(box, (n_frames, 3, 3))
        if box.shape != (n_frames, 3, 3):
            raise TrajectoryError(f"{name}: box must be (3,), (3, 3) or (n_frames, 3, 3), "
                                  f"got {box.shape}")
        species = np.asarray([str(s) for s in species])
        if species.shape != (n_atoms,):
            raise TrajectoryError(f"{name}: {len(species)} species for {n_atoms} atoms")
        self.name = name
        self._data = {"position": pos, "box": box}
        for key, arr, dtype in (("image", image, np.int64),
                                ("velocity", velocities, np.float64)):
            if arr is not None:
                a = np.asarray(arr, dtype=dtype)
                if a.ndim == 2:
                    a = a[None]
                if a.shape != pos.shape:
                    raise TrajectoryError(f"{name}: {key} has shape {a.shape}, positions "
                                          f"{pos.shape}")
                self._data[key] = a
        self.n_frames, self.n_atoms = n_frames, n_atoms
        self.species = species
        if masses is None:
            from ase.data import atomic_masses, atomic_numbers
            masses = [atomic_masses[atomic_numbers[s]] if s in atomic_numbers else 1.0
                      for s in species]
        self.masses = np.asarray(masses, dtype=np.float64)
        self.steps = (np.arange(n_frames, dtype=np.int64) if steps is None
                      else np.asarray(steps, dtype=np.int64))
        self.times = (self.steps * float(dt) if times is None
                      else np.asarray(times, dtype=np.float64))
        self.metadata = dict(metadata or {})
        self.fields = tuple(k for k in FRAME_FIELDS if k in self._data)
        self.time_unit = "fs"
        self.units = {"velocity": "Angstrom fs-1"}

    @classmethod
    def from_atoms(cls, images, dt=1.0, name="<list of ase.Atoms>"):
        """Build from a list of ``ase.Atoms`` (same atoms in every image).

        Velocities (ASE units) are converted to Å/fs; ``atoms.info["time"]`` (fs) is
        used when every image has it; metadata = ``images[0].info``.
        """
        from ase import units

        images = list(images)
        if not images:
            raise TrajectoryError(f"{name}: no images")
        species = images[0].get_chemical_symbols()
        for k, a in enumerate(images):
            if a.get_chemical_symbols() != species:
                raise TrajectoryError(f"{name}: image {k} has other atoms than image 0")
        pos = np.array([a.positions for a in images])
        box = np.array([a.cell.array for a in images])
        vel = None
        if all(a.has("momenta") for a in images):
            vel = np.array([a.get_velocities() for a in images]) * units.fs
        times = None
        if all("time" in a.info for a in images):
            times = [float(a.info["time"]) for a in images]
        return cls(pos, box, species, velocities=vel, times=times, dt=dt,
                   masses=images[0].get_masses(), metadata=images[0].info, name=name)

    def iter_chunks(self, start=0, stop=None, step=1, chunk=64,
                    fields=("position", "image")):
        """Yield ``(frame_indices, dict of stacked arrays incl. "box")``."""
        frames = np.arange(self.n_frames)[slice(start, stop, step)]
        for lo in range(0, len(frames), chunk):
            idx = frames[lo:lo + chunk]
            out = {"box": self._data["box"][idx]}
            for f in fields:
                if f not in self._data:
                    raise TrajectoryError(f"{self.name}: no {f!r} data "
                                          f"(available: {', '.join(self.fields)})")
                out[f] = self._data[f][idx]
            yield idx, out

    def frame(self, i):
        out = {k: v[i] for k, v in self._data.items()}
        out.update(step=int(self.steps[i]), time=float(self.times[i]))
        return out

    def close(self):
        pass


class _PathSource:
    """An H5MD file opened only while it is read (no handle kept between reads).

    Keeping no HDF5 handle open lets other readers (MDAnalysis, h5py with file
    locking) open the same file in the same process, and lets MPI ranks fork.
    """

    _ATTRS = ("n_frames", "n_atoms", "species", "masses", "metadata", "steps", "times",
              "fields", "time_unit", "units")

    def __init__(self, path):
        self.path = os.fspath(path)
        t = open_h5md(self.path)
        try:
            for k in self._ATTRS:
                setattr(self, k, getattr(t, k, None))
        finally:
            t.close()
        if self.time_unit is None:
            self.time_unit = "ps"

    def iter_chunks(self, start=0, stop=None, step=1, chunk=64, fields=("position",)):
        t = open_h5md(self.path)
        try:
            yield from t.iter_chunks(start=start, stop=stop, step=step, chunk=chunk,
                                     fields=fields)
        finally:
            t.close()


class TrajectoryAdapter:
    """Uniform read-only view of a trajectory (what the analyses use).

    Normalises ``species`` to an array of str, ``times`` to float fs (frame numbers
    when the source has none) and ``metadata`` to a dict, and adds
    :meth:`unwrapped`.
    """

    def __init__(self, source, name=None, owns=False):
        self.source = source
        self.name = str(name or getattr(source, "name", None)
                        or getattr(source, "path", None) or type(source).__name__)
        self._owns = owns
        self.n_frames = int(source.n_frames)
        self.n_atoms = int(source.n_atoms)
        self.species = np.asarray([str(s) for s in source.species])
        if self.species.shape != (self.n_atoms,):
            raise TrajectoryError(f"{self.name}: {len(self.species)} species for "
                                  f"{self.n_atoms} atoms")
        masses = getattr(source, "masses", None)
        self.masses = (np.asarray(masses, dtype=np.float64) if masses is not None
                       else np.ones(self.n_atoms))
        self.metadata = dict(getattr(source, "metadata", None) or {})
        steps = getattr(source, "steps", None)
        self.steps = (np.arange(self.n_frames, dtype=np.int64) if steps is None
                      else np.asarray(steps, dtype=np.int64))
        times = getattr(source, "times", None)
        unit = getattr(source, "time_unit", "fs")
        if unit not in _TIME_TO_FS:
            raise TrajectoryError(f"{self.name}: time unit {unit!r} not supported "
                                  f"({', '.join(_TIME_TO_FS)})")
        self.times = (self.steps.astype(np.float64) if times is None
                      else np.asarray(times, dtype=np.float64) * _TIME_TO_FS[unit])
        vunit = (getattr(source, "units", None) or {}).get("velocity")
        if vunit is None:
            vunit = "Angstrom ps-1" if unit == "ps" else "Angstrom fs-1"
        if vunit not in _VELOCITY_TO_A_FS:
            raise TrajectoryError(f"{self.name}: velocity unit {vunit!r} not supported "
                                  f"({', '.join(_VELOCITY_TO_A_FS)})")
        self._vfactor = _VELOCITY_TO_A_FS[vunit]
        self.fields = tuple(getattr(source, "fields", None) or ("position",))

    def iter_chunks(self, start=0, stop=None, step=1, chunk=64, fields=("position",)):
        """Yield ``(frame_indices, arrays)`` from the source (see module docstring)."""
        missing = [f for f in fields if f not in self.fields]
        if missing:
            raise TrajectoryError(f"{self.name}: no {', '.join(missing)} data in the "
                                  f"trajectory (available: {', '.join(self.fields)})")
        for idx, data in self.source.iter_chunks(start=start, stop=stop, step=step,
                                                 chunk=chunk, fields=tuple(fields)):
            data = dict(data)
            box = np.asarray(data["box"], dtype=np.float64)
            if box.ndim == 2 and box.shape == (len(idx), 3):     # edge lengths
                box = np.stack([np.diag(b) for b in box])
            elif box.ndim == 2:                                   # one box for all
                box = np.broadcast_to(box, (len(idx), 3, 3))
            data["box"] = box
            if "velocity" in data and self._vfactor != 1.0:
                data["velocity"] = data["velocity"] * self._vfactor
            yield np.asarray(idx, dtype=np.int64), data

    def first_frame(self, index=0, fields=("position",)):
        """Arrays of one frame (``position``, ``box``, ...)."""
        for _, data in self.iter_chunks(index, index + 1, 1, 1, fields):
            return {k: v[0] for k, v in data.items()}
        raise TrajectoryError(f"{self.name}: no frame {index}")

    def unwrapped(self, start=0, stop=None, step=1, atoms=None, chunk=64):
        """Continuous positions ``position + image @ box``, shape (n, N_sel, 3), Å.

        Without image flags the positions are returned as stored (taken as
        continuous).  ``atoms`` selects atom indices.
        """
        fields = ("position", "image") if "image" in self.fields else ("position",)
        out = []
        for _, data in self.iter_chunks(start, stop, step, chunk, fields):
            pos = data["position"]
            if "image" in data:
                pos = pos + np.einsum("fnk,fkj->fnj", data["image"].astype(np.float64),
                                      data["box"])
            out.append(pos if atoms is None else pos[:, atoms])
        return np.concatenate(out, axis=0)

    def close(self):
        if self._owns and hasattr(self.source, "close"):
            self.source.close()


def as_trajectory(obj):
    """Adapter for an H5MDTrajectory, a path, a list of ase.Atoms or an ArrayTrajectory.

    Raises
    ------
    TrajectoryError
        Anything else, or a path that does not exist.
    """
    if isinstance(obj, TrajectoryAdapter):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return TrajectoryAdapter(_PathSource(obj), name=os.fspath(obj))
    if isinstance(obj, ArrayTrajectory):
        return TrajectoryAdapter(obj, name=obj.name)
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover
        Atoms = ()
    if Atoms and isinstance(obj, Atoms):
        obj = [obj]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(a, Atoms) for a in obj):
        return TrajectoryAdapter(ArrayTrajectory.from_atoms(obj))
    if hasattr(obj, "iter_chunks") and hasattr(obj, "n_frames"):
        return TrajectoryAdapter(obj)
    raise TrajectoryError(
        f"cannot read a trajectory from {type(obj).__name__}: give an H5MDTrajectory, "
        "the path of an H5MD file, a list of ase.Atoms or an ArrayTrajectory")
