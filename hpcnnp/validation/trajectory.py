"""Trajectories of the property benchmarks: reading reference runs, and NVT MD with
any ASE calculator written as resumable H5MD.

Trajectories are members of hpcnnp's one trajectory family
(:mod:`hpcnnp.io.trajectory`) and are analysed by :mod:`hpcnnp.analysis`.

:func:`read_trajectory` reads

* any file ASE reads with several frames (extended XYZ with ``momenta`` or
  ``velocities`` columns, ASE ``.traj``, ...): the frame interval from
  ``info["time"]`` (fs) of the frames;
* H5MD files (``.h5md``/``.h5``) through :class:`hpcnnp.io.h5md.H5MDTrajectory`
  (times in ps and velocities in Å/ps converted to fs and Å/fs);

into an :class:`~hpcnnp.io.trajectory.ArrayTrajectory` (in memory; benchmark runs are
small) whose ``metadata["temperature"]`` is the nominal temperature (K): given, else
``info["temperature"]``/the ``temperature`` observable, else a ``..._1200K...``
token of the file name, else the kinetic temperature of the velocities.

:func:`run_md` runs NVT MD with any ASE calculator (the potential through
:class:`~hpcnnp.calculator.HDNNPCalculator`, or a reference labeler such as CHGNet)
and writes an H5MD file (positions wrapped + image flags, velocities, forces,
potential energy and temperature), so that reference and potential are run and
analysed alike.  The thermostat comes from the sampling stage's table
(:data:`hpcnnp.sampling.aimd.THERMOSTATS`; default Bussi stochastic velocity
rescaling, https://doi.org/10.1063/1.2408420, which disturbs the dynamics -- VACF,
MSD -- least among ASE's thermostats).

Resume: after every stored frame (and every frame interval during equilibration) the
state (step, positions, momenta, thermostat random state) is written atomically to
``<trajectory>.state.npz``; calling :func:`run_md` again with the same path continues
from there -- the trajectory of a killed and resumed run is the one an uninterrupted
run writes (the thermostat's random numbers continue from the saved state).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase import units
from ase.io import read
from ase.md.velocitydistribution import Stationary

from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.io.h5md import H5MDError, H5MDTrajectory, H5MDWriter
from hpcnnp.io.trajectory import ArrayTrajectory, TrajectoryError
from hpcnnp.sampling.aimd import THERMOSTATS, MDSettings, load_md_state, save_md_state

__all__ = ["read_trajectory", "run_md", "md_settings", "describe", "MDBlowUp",
           "kinetic_temperature", "frame_interval", "nominal_temperature", "thermalize"]

_TEMP_IN_NAME = re.compile(r"(?:^|[_\-.])(\d+(?:\.\d+)?)\s*K(?:$|[_\-.])")
_H5MD_SUFFIXES = (".h5", ".h5md", ".hdf5")


def frame_interval(traj):
    """Time between frames (fs) of an evenly spaced trajectory (fs units)."""
    dts = np.diff(np.asarray(traj.times, dtype=float))
    if not len(dts) or not (np.all(dts > 0) and np.allclose(dts, dts[0], rtol=1e-3)):
        raise InputFileError(traj.name, None, "frames are not evenly spaced in time; "
                             "give the frame interval (--frame-interval FS)")
    return float(dts[0])


def nominal_temperature(traj):
    """``metadata["temperature"]`` (K) of a benchmark trajectory."""
    return float(traj.metadata["temperature"])


def kinetic_temperature(traj):
    """Instantaneous temperature per frame (K), 3N - 3 degrees of freedom."""
    v = traj.velocities                                  # Å/fs
    ekin = 0.5 * np.einsum("n,fnc,fnc->f", traj.masses, v, v) / units.fs ** 2
    return 2.0 * ekin / (max(3 * traj.n_atoms - 3, 1) * units.kB)


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
        return float(np.mean(kinetic_temperature(traj)))
    raise InputFileError(traj.name, None, "no temperature: give it (--temperatures), "
                         "store info 'temperature' or put e.g. '_1200K' in the file name")


def _from_atoms_list(frames, name, dt, temperature):
    if len(frames) < 2:
        raise InputFileError(name, None, f"needs at least 2 frames, found {len(frames)}")
    for k, a in enumerate(frames):
        if a.get_chemical_symbols() != frames[0].get_chemical_symbols():
            raise InputFileError(name, None, f"frame {k}: atoms differ from frame 0 "
                                 "(a trajectory needs the same atoms in every frame)")
        if not a.pbc.all():
            raise InputFileError(name, None, "frames must be periodic (pbc = T T T)")
        if "velocities" in a.arrays and "momenta" not in a.arrays:
            a.set_velocities(a.arrays["velocities"])
    try:
        traj = ArrayTrajectory.from_atoms(frames, dt=dt or 1.0, name=name)
    except TrajectoryError as exc:
        raise InputFileError(name, None, str(exc)) from None
    if dt is not None:
        traj.times = np.arange(traj.n_frames) * float(dt)
    elif not all("time" in a.info for a in frames):
        raise InputFileError(name, None, "no frame interval: frames lack an evenly "
                             "spaced info 'time' (fs); give the frame interval "
                             "(--frame-interval FS)")
    frame_interval(traj)
    traj.metadata["temperature"] = _temperature(traj, frames[0].info, temperature)
    return traj


def _from_h5md(path, dt, temperature):
    try:
        t = H5MDTrajectory(path)
    except H5MDError as exc:
        raise InputFileError(path, None, str(exc)) from None
    with t:
        if t.n_frames < 2:
            raise InputFileError(path, None, f"needs at least 2 frames, found {t.n_frames}")
        fields = tuple(f for f in ("image", "velocity", "force") if f in t.fields)
        data = {f: t.read(f) for f in ("position", "box") + fields}
        info = dict(t.metadata)
        if temperature is None and "temperature" not in info and \
                "temperature" in t.observables:
            temperature = float(np.mean(t.observable("temperature")[2]))
        times = t.times * 1000.0 if dt is None else np.arange(t.n_frames) * float(dt)
        traj = ArrayTrajectory(
            data["position"], data["box"], t.species, image=data.get("image"),
            velocities=None if "velocity" not in data else data["velocity"] / 1000.0,
            forces=data.get("force"), times=times, steps=t.steps, masses=t.masses,
            metadata=info, name=str(path))
    frame_interval(traj)
    traj.metadata["temperature"] = _temperature(traj, info, temperature)
    return traj


def read_trajectory(path, frame_interval=None, temperature=None, index=":"):
    """Read a reference trajectory into memory (see the module docstring).

    Parameters
    ----------
    path : path
    frame_interval : float, fs, optional
        Time between frames (overrides the file's).
    temperature : float, K, optional
        Nominal temperature (overrides the file's).
    index : str
        Frame selection for ASE formats (e.g. ``"100:"`` to drop equilibration).

    Returns
    -------
    ArrayTrajectory
        Times in fs, velocities in Å/fs, ``metadata["temperature"]`` in K.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, None, "trajectory file not found")
    if path.suffix.lower() in _H5MD_SUFFIXES:
        return _from_h5md(path, frame_interval, temperature)
    try:
        frames = read(path, index=index)
    except Exception as exc:                       # ASE raises many types
        raise InputFileError(path, None, f"cannot read with ASE: {exc}") from None
    if not isinstance(frames, list):
        frames = [frames]
    return _from_atoms_list(frames, str(path), frame_interval, temperature)


def thermalize(atoms, temperature, rng):
    """Maxwell-Boltzmann momenta at ``temperature`` K, centre-of-mass motion removed."""
    from ase.md import velocitydistribution as vd
    if hasattr(vd, "thermalize_momenta"):            # ASE >= 3.27 name
        vd.thermalize_momenta(atoms, temperature, rng=rng)
    else:  # pragma: no cover
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)


# ---------------------------------------------------------------------------------------
# MD with a calculator, resumable
# ---------------------------------------------------------------------------------------

class MDBlowUp(HpcnnpError):
    """The MD run blew up (instantaneous temperature beyond the settings' limit)."""


def md_settings(temperature, n_frames, frame_interval=5.0, timestep=1.0,
                equilibration=0.0, taut=100.0, thermostat="bussi", seed=0):
    """The sampling stage's :class:`~hpcnnp.sampling.aimd.MDSettings` of a benchmark run.

    Parameters
    ----------
    temperature : float, K
    n_frames : int
        Frames stored, one every ``frame_interval`` after the equilibration (the
        first one ``frame_interval`` after it, as the sampling stage's snapshots).
    frame_interval : float, fs
        The time step used is the largest value <= ``timestep`` that divides it.
    timestep : float, fs
    equilibration : float, fs
        Time run before the frame clock starts (rounded to whole steps).
    taut : float, fs
        Time constant of the thermostat.
    thermostat : str
        Key of :data:`hpcnnp.sampling.aimd.THERMOSTATS` (Bussi by default).
    seed : int
        Initial velocities (when the start has none) and thermostat noise.
    """
    spf = max(1, int(np.ceil(float(frame_interval) / float(timestep) - 1e-9)))
    dt = float(frame_interval) / spf
    return MDSettings(temperature=float(temperature), snapshots=int(n_frames), interval=spf,
                      equilibration=int(round(float(equilibration) / dt)), timestep=dt,
                      thermostat=thermostat, tdamp=float(taut), seed=int(seed))


def describe(s):
    """JSON-ready protocol of MDSettings ``s`` (times in fs and ps)."""
    return {"temperature_K": s.temperature, "n_frames": s.snapshots,
            "frame_interval_fs": s.interval * s.timestep, "timestep_fs": s.timestep,
            "equilibration_fs": s.equilibration * s.timestep, "taut_fs": s.tdamp,
            "thermostat": s.thermostat, "seed": s.seed,
            "production_ps": s.snapshots * s.interval * s.timestep / 1000.0}


def _state_path(path):
    return Path(path).with_name(Path(path).name + ".state.npz")


def _write_frame(writer, atoms, step, dt):
    """Wrapped positions + image flags, velocities (Å/ps), forces (eV/Å), E_pot, T."""
    cell = atoms.cell.array
    frac = atoms.positions @ np.linalg.inv(cell)
    image = np.floor(frac).astype(np.int64)
    writer.write_frame(step, step * dt / 1000.0, (frac - image) @ cell, cell, image=image,
                       velocity=atoms.get_velocities() * units.fs * 1000.0,
                       force=atoms.get_forces(),
                       observables={"potential_energy": atoms.get_potential_energy(),
                                    "temperature": atoms.get_temperature()})


def _start(atoms, calculator, s, path, state_path):
    """(atoms with calculator, dynamics, rng, step, writer) for a new or resumed run."""
    make, _, set_state = THERMOSTATS[s.thermostat]
    a = atoms.copy()
    a.calc = calculator
    rng = np.random.default_rng(s.seed)
    step, dyn_state = 0, {}
    fields = ("position", "image", "velocity", "force")
    observables = ("potential_energy", "temperature")
    if state_path.is_file() and path.is_file():
        step, dyn_state, _ = load_md_state(state_path, a)
        writer = H5MDWriter(path, a, fields=fields, observables=observables, mode="a")
        writer.truncate_after(step)
    else:
        if not np.any(a.get_momenta()):
            thermalize(a, s.temperature, rng)
        meta = {"temperature": float(s.temperature), "md": describe(s),
                "calculator": getattr(calculator, "name", type(calculator).__name__)}
        writer = H5MDWriter(path, a, fields=fields, observables=observables, mode="w",
                            metadata=meta)
    dyn = make(a, s, rng)
    set_state(dyn, rng, dyn_state)
    return a, dyn, rng, step, writer


def run_md(atoms, calculator, settings, path, progress=None):
    """NVT MD with an ASE calculator into the H5MD file ``path`` (resumable).

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure; its velocities are used if set, else Maxwell-Boltzmann at
        the run's temperature (on a resume only its atoms are checked).
    calculator : ase Calculator
    settings : hpcnnp.sampling.aimd.MDSettings
        The run (see :func:`md_settings`): frames at ``settings.snapshot_steps()``.
    path : path
        The H5MD trajectory; ``<path>.state.npz`` beside it holds the resume state.
    progress : callable(done_frames, n_frames), optional
        Called after every stored frame (e.g. a :class:`hpcnnp.progress.Progress`).

    Returns
    -------
    ArrayTrajectory
        The trajectory read back (see :func:`read_trajectory`).

    Raises
    ------
    MDBlowUp
        The instantaneous temperature exceeded ``settings.max_temperature_factor``
        times the thermostat's (the run's state is kept; the trajectory so far too).
    """
    s = settings
    s.validate("md")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_path = _state_path(path)
    a, dyn, rng, step, writer = _start(atoms, calculator, s, path, state_path)
    get_state = THERMOSTATS[s.thermostat][1]
    frames = s.snapshot_steps()
    with writer:
        while writer.n_frames < s.snapshots:
            target = frames[writer.n_frames]
            if step == target:
                _write_frame(writer, a, step, s.timestep)
                if progress is not None:
                    progress(writer.n_frames, s.snapshots)
                continue
            n = min(target - step, s.interval)
            dyn.run(n)
            step += n
            t_inst = a.get_temperature()
            if not np.isfinite(t_inst) or t_inst > s.max_temperature_factor * s.temperature:
                raise MDBlowUp(f"{path}: MD blew up at step {step} ({step * s.timestep:g} "
                               f"fs): instantaneous temperature {t_inst:.0f} K > "
                               f"{s.max_temperature_factor:g} x {s.temperature:g} K")
            save_md_state(state_path, a, step, get_state(dyn, rng))
    return read_trajectory(path, temperature=s.temperature)
