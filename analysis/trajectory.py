"""One adapter for every kind of trajectory the analyses read.

The trajectories themselves are the family of :mod:`hpcnnp.io.trajectory` (the
H5MD file and the in-memory :class:`ArrayTrajectory`); this module adds the view
the analyses work through.

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
from ase import Atoms

from hpcnnp.io.h5md import H5MDTrajectory
from hpcnnp.io.trajectory import (FRAME_FIELDS, ArrayTrajectory, Trajectory,
                                  TrajectoryError, time_factor_fs, unwrap_images,
                                  velocity_factor_a_fs)

__all__ = ["as_trajectory", "ArrayTrajectory", "TrajectoryAdapter", "open_h5md",
           "TrajectoryError", "FRAME_FIELDS"]


def open_h5md(path):
    """Open an H5MD file read-only with :class:`hpcnnp.io.h5md.H5MDTrajectory`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise TrajectoryError(f"{path}: no such trajectory file")
    return H5MDTrajectory(path)


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
        tfac = time_factor_fs(unit, self.name)
        self.times = (self.steps.astype(np.float64) if times is None
                      else np.asarray(times, dtype=np.float64) * tfac)
        vunit = (getattr(source, "units", None) or {}).get("velocity")
        if vunit is None:
            vunit = "Angstrom ps-1" if unit == "ps" else "Angstrom fs-1"
        self._vfactor = velocity_factor_a_fs(vunit, self.name)
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
                pos = unwrap_images(pos, data["image"], data["box"])
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
    if isinstance(obj, Trajectory):
        return TrajectoryAdapter(obj, name=obj.name)
    if isinstance(obj, Atoms):
        obj = [obj]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(a, Atoms) for a in obj):
        return TrajectoryAdapter(ArrayTrajectory.from_atoms(obj))
    if hasattr(obj, "iter_chunks") and hasattr(obj, "n_frames"):
        return TrajectoryAdapter(obj)
    raise TrajectoryError(
        f"cannot read a trajectory from {type(obj).__name__}: give an H5MDTrajectory, "
        "the path of an H5MD file, a list of ase.Atoms or an ArrayTrajectory")
