"""The trajectory family: one read interface, a file member and an in-memory member.

Every trajectory hpcnnp reads is a :class:`Trajectory`:

* :class:`hpcnnp.io.h5md.H5MDTrajectory` -- an H5MD file (production MD, validation
  MD, active-learning exploration), frames read lazily;
* :class:`ArrayTrajectory` -- NumPy arrays in memory (a list of ``ase.Atoms``, files
  ASE reads, tests).

Both expose ``name``, ``n_frames``, ``n_atoms``, ``species`` (element symbol per
atom), ``masses`` (amu), ``metadata`` (dict: the builders' ``atoms.info``,
provenance, ``temperature``), ``steps``, ``times`` (in ``time_unit``), ``fields``
(the per-atom series present: ``position``, ``image``, ``velocity``, ``force``),
``units`` (field -> unit string) and :meth:`Trajectory.iter_chunks`, which yields
``(frame_indices, arrays)`` with ``box`` (n, 3, 3) (cell vectors as rows, Å) and
the requested fields stacked over up to ``chunk`` frames.  On that one method the
base class builds :meth:`~Trajectory.frame`, :meth:`~Trajectory.read`,
:meth:`~Trajectory.unwrapped` and :meth:`~Trajectory.atoms`.

Units are the member's own and are declared, not assumed: an H5MD file holds times
in ps and velocities in Å/ps (LAMMPS metal units), an :class:`ArrayTrajectory`
fs and Å/fs; :func:`time_factor_fs` and :func:`velocity_factor_a_fs` convert
(``hpcnnp.analysis`` works in fs and Å/fs through them).

Unwrapping
==========
MSDs need continuous ("unwrapped") positions; there are two ways, each written once
here:

* :func:`unwrap_images` -- ``position + image @ box`` with the periodic image flags
  the MD engine stores (exact, also under NPT);
* :func:`unwrap_nojump` -- without image flags, the frame-to-frame displacement is
  taken with the minimum-image convention in fractional coordinates and accumulated
  (each step converted with its own frame's cell, so NPT works).  Valid only when no
  atom moves more than half a cell width between stored frames: do not unwrap a
  trajectory thinned with a large stride this way.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.data import atomic_masses, atomic_numbers

from hpcnnp.errors import HpcnnpError

__all__ = ["Trajectory", "ArrayTrajectory", "TrajectoryError", "FRAME_FIELDS",
           "unwrap_images", "unwrap_nojump", "time_factor_fs", "velocity_factor_a_fs"]

#: per-atom, per-frame arrays a trajectory may hold
FRAME_FIELDS = ("position", "image", "velocity", "force")

#: time unit -> fs
TIME_TO_FS = {"fs": 1.0, "ps": 1e3, "ns": 1e6}
#: velocity unit (H5MD spelling) -> Å/fs
VELOCITY_TO_A_FS = {"Angstrom fs-1": 1.0, "A fs-1": 1.0, "Angstrom ps-1": 1e-3,
                    "A ps-1": 1e-3}


class TrajectoryError(HpcnnpError, ValueError):
    """A trajectory that cannot be read as given (the message names it)."""


def time_factor_fs(unit, name="trajectory"):
    """Factor converting times in ``unit`` to fs."""
    if unit not in TIME_TO_FS:
        raise TrajectoryError(f"{name}: time unit {unit!r} not supported "
                              f"({', '.join(TIME_TO_FS)})")
    return TIME_TO_FS[unit]


def velocity_factor_a_fs(unit, name="trajectory"):
    """Factor converting velocities in ``unit`` to Å/fs."""
    if unit not in VELOCITY_TO_A_FS:
        raise TrajectoryError(f"{name}: velocity unit {unit!r} not supported "
                              f"({', '.join(VELOCITY_TO_A_FS)})")
    return VELOCITY_TO_A_FS[unit]


def unwrap_images(position, image, box):
    """Continuous positions ``position + image @ box`` (Å).

    Parameters
    ----------
    position : (..., N, 3) array, Å
    image : (..., N, 3) int array
    box : (..., 3, 3) array, Å, cell vectors as rows (one per frame)
    """
    return np.asarray(position, dtype=np.float64) + np.einsum(
        "...nk,...kj->...nj", np.asarray(image, dtype=np.float64), box)


def unwrap_nojump(positions, boxes, previous=None):
    """Continuous positions from wrapped ones by minimum-image frame-to-frame steps.

    Parameters
    ----------
    positions : (F, N, 3) array, Å
        Consecutive frames.
    boxes : (F, 3, 3) or (3, 3) array, Å
    previous : tuple, optional
        ``last`` of the call on the chunk before, to continue a trajectory read in
        chunks; without it the first frame is kept as is.

    Returns
    -------
    continuous : (F, N, 3) array
    last : (continuous, raw, box) of the last frame, for the next call
    """
    pos = np.asarray(positions, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim == 2:
        boxes = np.broadcast_to(boxes, (len(pos), 3, 3))
    if previous is None:
        start_c, start_r, cells = pos[0], pos[0], boxes
        raw = pos
    else:
        start_c, start_r, start_box = previous
        raw = np.concatenate([start_r[None], pos])
        cells = np.concatenate([start_box[None], boxes])
    frac = np.einsum("fni,fij->fnj", raw, np.linalg.inv(cells))
    d = np.diff(frac, axis=0)
    d -= np.round(d)
    steps = np.einsum("fni,fij->fnj", d, cells[1:])
    walk = start_c + np.cumsum(steps, axis=0)
    out = walk if previous is not None else np.concatenate([start_c[None], walk])
    return out, (out[-1].copy(), pos[-1].copy(), boxes[-1].copy())


class Trajectory:
    """Base class of hpcnnp's trajectories (see the module docstring).

    Subclasses set the attributes and implement :meth:`iter_chunks`.
    """

    name = "<trajectory>"
    time_unit = "fs"
    #: exception type of this member's errors
    error = TrajectoryError
    units: dict = {}
    fields: tuple = ("position",)
    metadata: dict = {}

    def iter_chunks(self, start=0, stop=None, step=1, chunk=64, fields=("position",)):
        """Yield ``(frame_indices, arrays)`` over frames ``start:stop:step``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ built on it
    def _index(self, i):
        i = int(i)
        if i < 0:
            i += self.n_frames
        if not 0 <= i < self.n_frames:
            raise IndexError(f"{self.name}: frame {i} out of range ({self.n_frames} frames)")
        return i

    def _check_fields(self, fields):
        missing = [f for f in fields if f not in self.fields]
        if missing:
            raise self.error(f"{self.name}: no {', '.join(missing)} in the trajectory "
                             f"(available: {', '.join(self.fields)})")

    def frame(self, i):
        """One frame: ``box``, every stored field, ``step`` and ``time``."""
        i = self._index(i)
        _, data = next(iter(self.iter_chunks(i, i + 1, 1, 1, self.fields)))
        out = {k: v[0] for k, v in data.items()}
        out.update(step=int(self.steps[i]), time=float(self.times[i]))
        return out

    def read(self, field, start=0, stop=None, step=1, chunk=64):
        """One field (or ``"box"``) stacked over the frames ``start:stop:step``."""
        fields = () if field == "box" else (field,)
        parts = [d[field] for _, d in self.iter_chunks(start, stop, step, chunk, fields)]
        if not parts:
            return np.zeros((0,) + ((3, 3) if field == "box" else (self.n_atoms, 3)))
        return np.concatenate(parts)

    def unwrapped(self, start=0, stop=None, step=1, atoms=None, chunk=64):
        """Continuous positions ``position + image @ box``, (n, N_sel, 3) Å.

        ``atoms`` selects atom indices.  Needs stored image flags (else use
        :func:`unwrap_nojump` on consecutive frames).
        """
        self._check_fields(("position", "image"))
        out = []
        for _, d in self.iter_chunks(start, stop, step, chunk, ("position", "image")):
            pos = unwrap_images(d["position"], d["image"], d["box"])
            out.append(pos if atoms is None else pos[:, atoms])
        n_sel = self.n_atoms if atoms is None else len(np.arange(self.n_atoms)[atoms])
        return np.concatenate(out) if out else np.zeros((0, n_sel, 3))

    def atoms(self, i):
        """Frame ``i`` as ``ase.Atoms`` (positions, cell, masses, velocities if stored,
        ``info`` = metadata + ``step`` and ``time_fs``)."""
        fr = self.frame(i)
        a = Atoms(symbols=list(self.species), positions=fr["position"], cell=fr["box"],
                  pbc=True, masses=self.masses)
        if "velocity" in fr:
            f = velocity_factor_a_fs(self.units.get("velocity"), self.name)
            a.set_velocities(np.asarray(fr["velocity"]) * f / units.fs)
        a.info.update(self.metadata)
        a.info.update(step=fr["step"],
                      time_fs=fr["time"] * time_factor_fs(self.time_unit, self.name))
        return a

    def __len__(self):
        return self.n_frames

    def close(self):
        """Release the file (no-op in memory)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _boxes(box, n_frames, name):
    """(n_frames, 3, 3) cells from (3,) lengths, one (3, 3) cell or one per frame."""
    box = np.asarray(box, dtype=np.float64)
    if box.shape == (3,):
        box = np.diag(box)
    if box.shape == (3, 3):
        box = np.broadcast_to(box, (n_frames, 3, 3))
    if box.shape != (n_frames, 3, 3):
        raise TrajectoryError(f"{name}: box must be (3,), (3, 3) or (n_frames, 3, 3), "
                              f"got {box.shape}")
    return box


class ArrayTrajectory(Trajectory):
    """A trajectory held in NumPy arrays (the in-memory member of the family).

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
    forces : array like positions, eV/Å, optional
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
        ``structure_class``, ``temperature``).
    name : str
        Name used in error messages.
    """

    time_unit = "fs"

    def __init__(self, positions, box, species, *, image=None, velocities=None,
                 forces=None, times=None, dt=1.0, steps=None, masses=None, metadata=None,
                 name="<array trajectory>"):
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim == 2:
            pos = pos[None]
        if pos.ndim != 3 or pos.shape[2] != 3:
            raise TrajectoryError(f"{name}: positions must have shape (n_frames, n_atoms, "
                                  f"3), got {np.shape(positions)}")
        n_frames, n_atoms = pos.shape[:2]
        box = _boxes(box, n_frames, name)
        species = np.asarray([str(s) for s in species])
        if species.shape != (n_atoms,):
            raise TrajectoryError(f"{name}: {len(species)} species for {n_atoms} atoms")
        self.name = name
        self._data = {"position": pos, "box": box}
        for key, arr, dtype in (("image", image, np.int64),
                                ("velocity", velocities, np.float64),
                                ("force", forces, np.float64)):
            if arr is not None:
                self._data[key] = self._per_atom(key, arr, dtype, pos.shape)
        self.n_frames, self.n_atoms = n_frames, n_atoms
        self.species = species
        if masses is None:
            masses = [atomic_masses[atomic_numbers[s]] if s in atomic_numbers else 1.0
                      for s in species]
        self.masses = np.asarray(masses, dtype=np.float64)
        self.steps = (np.arange(n_frames, dtype=np.int64) if steps is None
                      else np.asarray(steps, dtype=np.int64))
        self.times = (self.steps * float(dt) if times is None
                      else np.asarray(times, dtype=np.float64))
        self.metadata = dict(metadata or {})
        self.fields = tuple(k for k in FRAME_FIELDS if k in self._data)
        self.units = {"position": "Angstrom", "velocity": "Angstrom fs-1",
                      "force": "eV Angstrom-1"}

    def _per_atom(self, key, arr, dtype, shape):
        a = np.asarray(arr, dtype=dtype)
        if a.ndim == 2:
            a = a[None]
        if a.shape != shape:
            raise TrajectoryError(f"{self.name}: {key} has shape {a.shape}, positions "
                                  f"{shape}")
        return a

    @classmethod
    def from_atoms(cls, images, dt=1.0, name="<list of ase.Atoms>"):
        """Build from a list of ``ase.Atoms`` (same atoms in every image).

        Velocities (ASE units) are converted to Å/fs; ``atoms.info["time"]`` (fs) is
        used when every image has it; metadata = ``images[0].info``.
        """
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

    @property
    def positions(self):
        """(n_frames, n_atoms, 3) positions as given, Å."""
        return self._data["position"]

    @property
    def box(self):
        """(n_frames, 3, 3) cells, Å."""
        return self._data["box"]

    @property
    def velocities(self):
        """(n_frames, n_atoms, 3) velocities, Å/fs, or None."""
        return self._data.get("velocity")

    def iter_chunks(self, start=0, stop=None, step=1, chunk=64,
                    fields=("position", "image")):
        """Yield ``(frame_indices, dict of stacked arrays incl. "box")``."""
        self._check_fields(fields)
        frames = np.arange(self.n_frames)[slice(start, stop, step)]
        for lo in range(0, len(frames), max(1, int(chunk))):
            idx = frames[lo:lo + chunk]
            out = {"box": self._data["box"][idx]}
            for f in fields:
                out[f] = self._data[f][idx]
            yield idx, out
