"""Trajectories for the property benchmarks: reading, MD with a calculator, writing.

A :class:`Trajectory` holds the frames of one MD run in memory as arrays: positions
(Å, wrapped or not), cells (Å), velocities (Å/fs, optional), the frame interval (fs)
and the nominal temperature (K).  :func:`read_trajectory` reads

* any file ASE reads with several frames (extended XYZ with ``momenta`` or
  ``velocities`` columns, ASE ``.traj``, ...): the frame interval from
  ``info["time"]`` (fs) of the frames, the temperature from ``info["temperature"]``
  (K), else from a ``..._1200K...`` token of the file name, else from the kinetic
  energy of the velocities;
* H5MD files (``.h5``/``.h5md``) through :class:`hpcnnp.io.h5md.H5MDTrajectory`
  (unwrapped with the image flags when stored; times in ps and velocities in Å/ps
  converted to fs and Å/fs; the temperature from the ``temperature`` observable).

:func:`run_md` runs NVT MD with any ASE calculator (the potential through
:class:`~hpcnnp.calculator.HDNNPCalculator`, or a reference labeler) and returns a
:class:`Trajectory` with the same frame interval, so that reference and potential are
analysed alike.  Positions are kept unwrapped (ASE does not wrap).  The Bussi
stochastic velocity-rescaling thermostat (https://doi.org/10.1063/1.2408420) disturbs
the dynamics (VACF, MSD) least among ASE's thermostats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hpcnnp.errors import InputFileError
from hpcnnp.fileio import atomic_path

__all__ = ["Trajectory", "read_trajectory", "run_md"]

_TEMP_IN_NAME = re.compile(r"(?:^|[_\-.])(\d+(?:\.\d+)?)\s*K(?:$|[_\-.])")


@dataclass
class Trajectory:
    """One MD run in memory (see the module docstring for units)."""

    name: str
    symbols: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    frame_interval: float
    temperature: float
    masses: np.ndarray
    velocities: np.ndarray | None = None

    @property
    def n_frames(self):
        return len(self.positions)

    @property
    def n_atoms(self):
        return len(self.symbols)

    def slice(self, lo, hi, step=1):
        """The frames lo:hi:step as a new trajectory."""
        s = slice(lo, hi, step)
        return replace(self, positions=self.positions[s], cells=self.cells[s],
                       velocities=None if self.velocities is None else self.velocities[s],
                       frame_interval=self.frame_interval * step)

    def velocities_or_differences(self):
        """Velocities (Å/fs): stored ones, else central differences of unwrapped positions."""
        if self.velocities is not None:
            return self.velocities
        from .observables import unwrap
        if self.n_frames < 3:
            raise InputFileError(self.name, None, "needs velocities or >= 3 frames")
        return np.gradient(unwrap(self.positions, self.cells), self.frame_interval, axis=0)

    def kinetic_temperature(self):
        """Instantaneous temperature per frame (K), 3N - 3 degrees of freedom."""
        from ase import units
        v = self.velocities_or_differences()
        ekin = 0.5 * np.einsum("n,fnc,fnc->f", self.masses, v, v) / units.fs ** 2
        return 2.0 * ekin / (max(3 * self.n_atoms - 3, 1) * units.kB)

    def atoms(self, k=0):
        """Frame ``k`` as ase.Atoms (with velocities if stored)."""
        from ase import Atoms, units
        a = Atoms(symbols=list(self.symbols), positions=self.positions[k],
                  cell=self.cells[k], pbc=True)
        if self.velocities is not None:
            a.set_velocities(self.velocities[k] / units.fs)
        return a

    def write(self, path):
        """Write all frames as extended XYZ (``info["time"]`` in fs, velocities)."""
        from ase.io import write
        frames = []
        for k in range(self.n_frames):
            a = self.atoms(k)
            a.info["time"] = k * self.frame_interval
            a.info["temperature"] = self.temperature
            frames.append(a)
        path = Path(path)
        with atomic_path(path) as tmp:
            write(tmp, frames, format="extxyz")
        return path


def _from_atoms_list(frames, name, frame_interval, temperature):
    from ase import units
    if len(frames) < 2:
        raise InputFileError(name, None, f"needs at least 2 frames, found {len(frames)}")
    symbols = np.array(frames[0].get_chemical_symbols())
    for k, a in enumerate(frames):
        if len(a) != len(symbols) or a.get_chemical_symbols() != symbols.tolist():
            raise InputFileError(name, None, f"frame {k}: atoms differ from frame 0 "
                                 "(a trajectory needs the same atoms in every frame)")
    if not all(a.pbc.all() for a in frames):
        raise InputFileError(name, None, "frames must be periodic (pbc = T T T)")
    pos = np.array([a.get_positions() for a in frames])
    cells = np.array([a.cell.array for a in frames])
    has_v = all(("momenta" in a.arrays) or ("velocities" in a.arrays) for a in frames)
    vel = None
    if has_v:
        vel = np.array([a.arrays["velocities"] if "velocities" in a.arrays and
                        "momenta" not in a.arrays else a.get_velocities()
                        for a in frames]) * units.fs
    if frame_interval is None:
        times = [a.info.get("time") for a in frames]
        if all(t is not None for t in times):
            dts = np.diff(np.asarray(times, dtype=float))
            if np.all(dts > 0) and np.allclose(dts, dts[0], rtol=1e-3):
                frame_interval = float(dts[0])
        if frame_interval is None:
            raise InputFileError(name, None, "no frame interval: frames lack an evenly "
                                 "spaced info 'time' (fs); give the frame interval "
                                 "(--frame-interval FS)")
    traj = Trajectory(name=name, symbols=symbols, positions=pos, cells=cells,
                      frame_interval=float(frame_interval), temperature=float("nan"),
                      masses=frames[0].get_masses(), velocities=vel)
    traj.temperature = _temperature(traj, frames[0].info, temperature)
    return traj


def _temperature(traj, info, temperature):
    if temperature is not None:
        return float(temperature)
    for key in ("temperature", "temperature_K", "T"):
        if key in info:
            return float(info[key])
    m = _TEMP_IN_NAME.search(Path(traj.name).stem + ".")
    if m:
        return float(m.group(1))
    if traj.velocities is not None:
        return float(np.mean(traj.kinetic_temperature()))
    raise InputFileError(traj.name, None, "no temperature: give it (--temperatures), "
                         "store info 'temperature' or put e.g. '_1200K' in the file name")


def _read_h5md(path, frame_interval, temperature):
    """Read an H5MD file through :class:`hpcnnp.io.h5md.H5MDTrajectory`."""
    from hpcnnp.io.h5md import H5MDError, H5MDTrajectory

    try:
        t = H5MDTrajectory(path)
    except H5MDError as exc:
        raise InputFileError(path, None, str(exc)) from None
    with t:
        if t.n_frames < 2:
            raise InputFileError(path, None, f"needs at least 2 frames, found {t.n_frames}")
        pos = t.unwrapped() if "image" in t.fields else np.concatenate(
            [d["position"] for _, d in t.iter_chunks(fields=("position",))])
        cells = np.concatenate([d["box"] for _, d in t.iter_chunks(fields=())])
        vel = None
        if "velocity" in t.fields:                       # Å/ps -> Å/fs
            vel = np.concatenate([d["velocity"] for _, d in
                                  t.iter_chunks(fields=("velocity",))]) / 1000.0
        if frame_interval is None:
            dts = np.diff(t.times) * 1000.0
            if not (np.all(dts > 0) and np.allclose(dts, dts[0], rtol=1e-3)):
                raise InputFileError(path, None, "frames are not evenly spaced in time; "
                                     "give --frame-interval")
            frame_interval = float(dts[0])
        info = dict(t.metadata) if isinstance(t.metadata, dict) else {}
        if temperature is None and "temperature" in t.observables:
            temperature = float(np.mean(t.observable("temperature")[2]))
        traj = Trajectory(name=str(path), symbols=np.array(t.species), positions=pos,
                          cells=cells, frame_interval=float(frame_interval),
                          temperature=float("nan"), masses=np.asarray(t.masses),
                          velocities=vel)
    traj.temperature = _temperature(traj, info, temperature)
    return traj


def read_trajectory(path, frame_interval=None, temperature=None, index=":"):
    """Read a reference trajectory (see the module docstring).

    Parameters
    ----------
    path : path
    frame_interval : float, fs, optional
        Time between frames (overrides the file's).
    temperature : float, K, optional
        Nominal temperature (overrides the file's).
    index : str
        Frame selection for ASE formats (e.g. ``"100:"`` to drop equilibration).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, None, "trajectory file not found")
    if path.suffix.lower() in (".h5", ".h5md", ".hdf5"):
        return _read_h5md(path, frame_interval, temperature)
    from ase.io import read
    try:
        frames = read(path, index=index)
    except Exception as exc:                       # ASE raises many types
        raise InputFileError(path, None, f"cannot read with ASE: {exc}") from None
    if not isinstance(frames, list):
        frames = [frames]
    return _from_atoms_list(frames, str(path), frame_interval, temperature)


def run_md(atoms, calculator, temperature, n_frames, frame_interval, timestep=1.0,
           equilibration=0.0, taut=100.0, seed=0, name="md", progress=None):
    """NVT MD (Bussi thermostat) with an ASE calculator; returns a :class:`Trajectory`.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (its velocities are used if set, else Maxwell-Boltzmann).
    calculator : ase Calculator
    temperature : float, K
    n_frames : int
        Frames stored (the first at the end of equilibration).
    frame_interval : float, fs
        Time between stored frames; the time step is the largest value <= ``timestep``
        that divides it.
    timestep : float, fs
    equilibration : float, fs
        Time run before the first stored frame.
    taut : float, fs
        Thermostat time constant.
    progress : callable(done_frames, n_frames), optional
    """
    from ase import units
    from ase.md.bussi import Bussi
    from ase.md.velocitydistribution import Stationary

    steps_per_frame = max(1, int(np.ceil(frame_interval / timestep - 1e-9)))
    dt = frame_interval / steps_per_frame
    a = atoms.copy()
    a.calc = calculator
    rng = np.random.default_rng(seed)
    if not np.any(a.get_momenta()):
        _thermalize(a, temperature, rng)
        Stationary(a)
    dyn = Bussi(a, dt * units.fs, temperature_K=temperature, taut=taut * units.fs,
                rng=rng)
    n_eq = int(round(equilibration / dt))
    if n_eq:
        dyn.run(n_eq)
    pos, cells, vel = [], [], []
    for k in range(int(n_frames)):
        if k:
            dyn.run(steps_per_frame)
        pos.append(a.get_positions())
        cells.append(a.cell.array.copy())
        vel.append(a.get_velocities() * units.fs)
        if progress is not None:
            progress(k + 1, n_frames)
    return Trajectory(name=name, symbols=np.array(a.get_chemical_symbols()),
                      positions=np.array(pos), cells=np.array(cells),
                      frame_interval=float(frame_interval), temperature=float(temperature),
                      masses=a.get_masses(), velocities=np.array(vel))


def _thermalize(atoms, temperature, rng):
    """Maxwell-Boltzmann momenta at ``temperature`` K (ASE >= 3.27 name, else the old)."""
    from ase.md import velocitydistribution as vd
    if hasattr(vd, "thermalize_momenta"):
        vd.thermalize_momenta(atoms, temperature, rng=rng)
    else:
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
