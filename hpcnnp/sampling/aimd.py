"""NVT molecular dynamics with a labeler: snapshots for the training set.

One trajectory = one structure at one temperature: initial velocities from the
Maxwell-Boltzmann distribution at T (centre-of-mass momentum removed), then
``equilibration`` MD steps without output, then a snapshot every ``interval``
steps until ``snapshots`` are taken.  Every snapshot holds the positions, cell,
the labeler's (force-consistent) energy, forces and stress *of exactly those
positions*, the step, the simulated time and the instantaneous temperature.

Thermostats (:data:`THERMOSTATS`, ``ase.md``)
---------------------------------------------
``langevin`` (default)
    :class:`ase.md.langevin.Langevin` (BAOAB-like propagator of ASE,
    ``fixcm=False``), friction γ in 1/fs (default 0.01 fs⁻¹, i.e. velocities
    decorrelate in ~100 fs).  Samples the canonical ensemble, is robust for hot
    random packings and melts (it damps the large forces of a fresh packing)
    and, because its noise comes from a seeded generator whose state is
    checkpointed, a resumed trajectory continues exactly as an uninterrupted one.
    Dynamics (diffusion) are perturbed, which does not matter for sampling.
``bussi``
    Stochastic velocity rescaling (G. Bussi, D. Donadio, M. Parrinello,
    J. Chem. Phys. 126, 014101 (2007)), time constant ``tdamp`` fs; canonical,
    gentle on the dynamics; also exactly resumable.
``nose-hoover``
    Nosé-Hoover chain (3 thermostats, ``tdamp`` fs; ASE's
    ``NoseHooverChainNVT``); deterministic and canonical for ergodic systems,
    but it can ring for small or stiff cells; chain variables are checkpointed.
``berendsen``
    Weak coupling (``tdamp`` fs); *not* canonical (suppresses kinetic-energy
    fluctuations) -- offered for equilibration-like uses only.

Pitfalls: a time step of 1 fs is fine for Li-containing oxides up to ~2000 K;
at 3000-4000 K use 0.5 fs if trajectories blow up (this module stops a
trajectory whose instantaneous temperature exceeds ``max_temperature_factor``
x T and reports it as a failed labeling rather than sampling garbage).

Files (resumable)
-----------------
With a ``directory``, each snapshot is written atomically as
``snap_NNNNN.npz`` and the state (step, positions, momenta, random-generator
and thermostat state) as ``state.npz`` after every ``interval`` steps; calling
:func:`run_aimd` again with the same directory continues from the last state
and never repeats or loses a snapshot.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import units

from hpcnnp.errors import HpcnnpError
from hpcnnp.sampling.labelers import LabelingError

__all__ = ["MDSettings", "THERMOSTATS", "run_aimd", "read_snapshots", "AIMDResult",
           "STATE_FILE", "SNAPSHOT_GLOB", "save_md_state", "load_md_state"]

STATE_FILE = "state.npz"
SNAPSHOT_GLOB = "snap_*.npz"


# ---------------------------------------------------------------------------------------
# Thermostats: name -> how to build the integrator and (re)store its state
# ---------------------------------------------------------------------------------------

def _rng_state(dyn, rng):
    return {"rng": rng.bit_generator.state}


def _set_rng_state(dyn, rng, state):
    if state.get("rng"):
        rng.bit_generator.state = state["rng"]


def _make_langevin(atoms, s, rng):
    from ase.md.langevin import Langevin
    return Langevin(atoms, s.timestep * units.fs, temperature_K=s.temperature,
                    friction=s.friction / units.fs, fixcm=False, rng=rng)


def _make_bussi(atoms, s, rng):
    from ase.md.bussi import Bussi
    return Bussi(atoms, s.timestep * units.fs, temperature_K=s.temperature,
                 taut=s.tdamp * units.fs, rng=rng)


def _make_nose_hoover(atoms, s, rng):
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    return NoseHooverChainNVT(atoms, s.timestep * units.fs, temperature_K=s.temperature,
                              tdamp=s.tdamp * units.fs, tchain=3)


def _nh_state(dyn, rng):
    th = dyn._thermostat
    return {"eta": th._eta.tolist(), "p_eta": th._p_eta.tolist()}


def _set_nh_state(dyn, rng, state):
    if "eta" in state:
        dyn._thermostat._eta = np.array(state["eta"], float)
        dyn._thermostat._p_eta = np.array(state["p_eta"], float)


def _make_berendsen(atoms, s, rng):
    from ase.md.nvtberendsen import NVTBerendsen
    return NVTBerendsen(atoms, s.timestep * units.fs, temperature_K=s.temperature,
                        taut=s.tdamp * units.fs, fixcm=False)


def _no_state(dyn, rng):
    return {}


def _set_no_state(dyn, rng, state):
    pass


#: thermostat -> (build(atoms, settings, rng), get_state(dyn, rng), set_state(dyn, rng, state))
THERMOSTATS = {
    "langevin": (_make_langevin, _rng_state, _set_rng_state),
    "bussi": (_make_bussi, _rng_state, _set_rng_state),
    "nose-hoover": (_make_nose_hoover, _nh_state, _set_nh_state),
    "berendsen": (_make_berendsen, _no_state, _set_no_state),
}


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------

@dataclass
class MDSettings:
    """Settings of one NVT trajectory.

    Attributes
    ----------
    temperature : float, K
        Thermostat temperature (> 0).
    snapshots : int
        Number of snapshots to take (>= 1).
    interval : int
        MD steps between snapshots (>= 1).
    equilibration : int
        MD steps before the first counted step (>= 0); the first snapshot is at
        step ``equilibration + interval``.
    timestep : float, fs
    thermostat : str
        Key of :data:`THERMOSTATS`.
    friction : float, 1/fs
        Langevin friction.
    tdamp : float, fs
        Time constant of the Bussi, Nosé-Hoover and Berendsen thermostats.
    seed : int
        Seeds the initial velocities and the thermostat noise.
    walltime : float or None, s
        Soft limit: checked every ``interval`` steps; when exceeded the state is
        saved and a ``timeout`` LabelingError raised (a retry resumes).
    max_temperature_factor : float
        Stop (LabelingError ``md``) when the instantaneous temperature exceeds
        this factor times ``temperature``.
    """

    temperature: float
    snapshots: int = 10
    interval: int = 10
    equilibration: int = 100
    timestep: float = 1.0
    thermostat: str = "langevin"
    friction: float = 0.01
    tdamp: float = 100.0
    seed: int = 0
    walltime: float | None = None
    max_temperature_factor: float = 5.0

    #: fields that do not change the trajectory (excluded from task hashes)
    RUNTIME = ("walltime",)

    def __post_init__(self):
        self.validate()

    def validate(self, where="md"):
        """Raise HpcnnpError naming the bad field."""
        def bad(key, why):
            raise HpcnnpError(f"{where}: {key} {why}, got {getattr(self, key)!r}")

        for key in ("temperature", "timestep", "friction", "tdamp", "max_temperature_factor"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                bad(key, "must be a number")
            if not np.isfinite(value) or value <= 0:
                bad(key, "must be > 0" + (" K" if key == "temperature" else ""))
        for key, low in (("snapshots", 1), ("interval", 1), ("equilibration", 0), ("seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                bad(key, "must be a whole number")
            if value < low:
                bad(key, f"must be >= {low}")
        if self.thermostat not in THERMOSTATS:
            raise HpcnnpError(f"{where}: unknown thermostat {self.thermostat!r}; known: "
                              + ", ".join(THERMOSTATS))
        if self.walltime is not None and (isinstance(self.walltime, bool) or
                                          not isinstance(self.walltime, (int, float)) or
                                          self.walltime <= 0):
            bad("walltime", "must be a number of seconds > 0 (or null)")

    @property
    def total_steps(self):
        return self.equilibration + self.snapshots * self.interval

    def snapshot_steps(self):
        return [self.equilibration + (k + 1) * self.interval for k in range(self.snapshots)]

    def to_dict(self, runtime=True):
        d = asdict(self)
        if not runtime:
            for key in self.RUNTIME:
                d.pop(key, None)
        return d


@dataclass
class AIMDResult:
    """What :func:`run_aimd` did: the snapshots (dicts, see :func:`read_snapshots`), the
    steps run in this call, the step it resumed from and the wall time (s)."""

    snapshots: list
    steps_run: int
    resumed_from: int
    wall_time: float
    calls: int = 0
    log: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------

def _atomic_npz(path, **arrays):
    from hpcnnp.fileio import atomic_open
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def save_md_state(path, atoms, step, thermostat_state, **extra):
    """Write the resume state of an ASE MD run atomically: atoms (numbers, cell, pbc,
    positions, momenta), the step, the thermostat's state (JSON) and ``extra`` arrays."""
    _atomic_npz(path, numbers=atoms.numbers, cell=np.array(atoms.cell), pbc=atoms.pbc,
                positions=atoms.positions, momenta=atoms.get_momenta(), step=step,
                thermostat=json.dumps(thermostat_state), **extra)


def load_md_state(path, atoms):
    """Restore ``atoms`` from :func:`save_md_state`'s file; returns (step, thermostat
    state, dict of the extra arrays).

    Raises
    ------
    HpcnnpError
        The saved run has other atoms than ``atoms``.
    """
    with np.load(path) as z:
        if not np.array_equal(z["numbers"], atoms.numbers):
            raise HpcnnpError(f"{path}: the saved run has other atoms than the structure "
                              "given; remove it (or its folder) to start anew")
        atoms.set_cell(z["cell"])
        atoms.pbc = z["pbc"]
        atoms.positions = z["positions"]
        atoms.set_momenta(z["momenta"], apply_constraint=False)
        fixed = ("numbers", "cell", "pbc", "positions", "momenta", "step", "thermostat")
        extra = {k: z[k] for k in z.files if k not in fixed}
        return int(z["step"]), json.loads(str(z["thermostat"])), extra


def _snapshot_path(directory, k):
    return Path(directory) / f"snap_{k:05d}.npz"


def read_snapshots(directory):
    """The snapshots of a trajectory folder, in order, as dicts with ``numbers``,
    ``positions`` (Å), ``cell`` (Å), ``pbc``, ``energy`` (eV), ``forces`` (eV/Å),
    ``stress`` (eV/Å^3, Voigt, or None), ``step``, ``time_fs``, ``temperature_inst``
    (K) and ``index``."""
    out = []
    for path in sorted(Path(directory).glob(SNAPSHOT_GLOB)):
        with np.load(path) as z:
            snap = {k: z[k] for k in z.files}
        snap["stress"] = snap["stress"] if snap.get("stress") is not None and \
            snap["stress"].size == 6 else None
        for key in ("energy", "time_fs", "temperature_inst"):
            snap[key] = float(snap[key])
        for key in ("step", "index"):
            snap[key] = int(snap[key])
        snap["pbc"] = snap["pbc"].astype(bool)
        out.append(snap)
    return out


def _instant_temperature(atoms):
    n = len(atoms)
    dof = max(3 * n - 3, 1)
    return 2.0 * atoms.get_kinetic_energy() / (dof * units.kB)


# ---------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------

def _start_or_resume(atoms, s, rng, state_path):
    """Initial velocities, or the saved state of an interrupted run.

    Parameters
    ----------
    atoms : ase.Atoms
        The trajectory's atoms (momenta set in place on a fresh start).
    s : MDSettings
    rng : numpy.random.Generator
        Draws the Maxwell-Boltzmann velocities at ``s.temperature`` (K).
    state_path : path or None
        ``state.npz`` of the run folder; ``None`` without a folder.

    Returns
    -------
    step : int
        MD step to go on from (0 on a fresh start).
    thermostat_state : dict
        The thermostat's saved state (empty on a fresh start).
    next_snapshot : int
        Index of the next snapshot to take.
    """
    if state_path is not None and state_path.is_file():
        step, thermo_state, extra = load_md_state(state_path, atoms)
        return step, thermo_state, int(extra["next_snapshot"])
    from ase.md import velocitydistribution as vd
    if hasattr(vd, "thermalize_momenta"):            # ASE >= 3.28
        vd.thermalize_momenta(atoms, temperature_K=s.temperature, rng=rng)
    else:  # pragma: no cover
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=s.temperature, rng=rng)
    vd.Stationary(atoms)
    return 0, {}, 0


def _next_stop(step, s, snap_steps, next_snap):
    """The next step to stop at: the next multiple of ``s.interval`` or the next
    snapshot step, at most ``s.total_steps``."""
    stop = min(s.total_steps, (step // s.interval + 1) * s.interval)
    if next_snap < len(snap_steps):
        stop = min(stop, snap_steps[next_snap])
    return stop


def _checked_temperature(atoms, s, step, name):
    """Instantaneous temperature (K) of ``atoms``.

    Raises
    ------
    LabelingError
        The temperature is not finite or above ``s.max_temperature_factor`` times
        the target ``s.temperature`` (a trajectory that blew up).
    """
    t_inst = _instant_temperature(atoms)
    if not np.isfinite(t_inst) or t_inst > s.max_temperature_factor * s.temperature:
        raise LabelingError(name, "md", f"trajectory blew up at step {step}: "
                            f"instantaneous temperature {t_inst:.0f} K > "
                            f"{s.max_temperature_factor} x {s.temperature} K "
                            "(try a smaller timestep)")
    return t_inst


def _snapshot(atoms, calc, index, step, timestep, t_inst):
    """One labelled snapshot of the trajectory.

    Parameters
    ----------
    atoms : ase.Atoms
        With ``calc`` attached.
    calc : ase.calculators.calculator.Calculator
        The labeler; its free energy is taken where it has one (force-consistent).
    index, step : int
        Snapshot number and MD step.
    timestep : float, fs
    t_inst : float, K
        Instantaneous temperature.

    Returns
    -------
    dict
        ``index``, ``numbers``, ``positions`` (Å), ``cell`` (Å), ``pbc``,
        ``energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å^3, Voigt; empty if the
        labeler has none), ``step``, ``time_fs``, ``temperature_inst`` (K).
    """
    energy = float(atoms.get_potential_energy(force_consistent=True)
                   if "free_energy" in calc.implemented_properties
                   else atoms.get_potential_energy())
    forces = np.array(atoms.get_forces(), dtype=float)
    stress = calc.results.get("stress")
    return dict(index=index, numbers=atoms.numbers.copy(),
                positions=atoms.positions.copy(), cell=np.array(atoms.cell),
                pbc=atoms.pbc.copy(), energy=energy, forces=forces,
                stress=np.array(stress, float) if stress is not None else np.zeros(0),
                step=step, time_fs=step * timestep, temperature_inst=t_inst)


def run_aimd(atoms, calc, settings, directory=None, log=None):
    """Run (or continue) one NVT trajectory and take snapshots.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (positions in Å).  On a resume only its numbers are
        checked; positions and momenta come from the saved state.
    calc : ase.calculators.calculator.Calculator
        The labeler, normally from :func:`hpcnnp.sampling.labelers.get_labeler`.
    settings : MDSettings
    directory : str or path, optional
        Folder for ``snap_NNNNN.npz`` and ``state.npz`` (resumable); without it
        nothing is written and the snapshots are only returned.
    log : callable, optional
        ``log(line)`` for progress lines.

    Returns
    -------
    AIMDResult

    Raises
    ------
    LabelingError
        The labeler failed, the walltime was exceeded (state saved) or the
        trajectory blew up.
    """
    s = settings
    s.validate()
    make, get_state, set_state = THERMOSTATS[s.thermostat]
    t_start = time.perf_counter()
    name = getattr(calc, "name", type(calc).__name__)
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(s.seed)
    directory = None if directory is None else Path(directory)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    state_path = directory / STATE_FILE if directory is not None else None
    step, thermo_state, next_snap = _start_or_resume(atoms, s, rng, state_path)
    resumed_from = step
    dyn = make(atoms, s, rng)
    set_state(dyn, rng, thermo_state)
    snap_steps = s.snapshot_steps()
    total = s.total_steps
    calls0 = getattr(calc, "n_calls", 0)
    memory, lines = [], []

    def say(text):
        lines.append(text)
        if log is not None:
            log(text)

    say(f"{'resume' if resumed_from else 'start'} {s.thermostat} NVT T={s.temperature} K "
        f"dt={s.timestep} fs at step {step}/{total}, snapshot {next_snap}/{s.snapshots}")
    t_chunk = time.perf_counter()
    while step < total:
        stop = _next_stop(step, s, snap_steps, next_snap)
        while step < stop:
            dyn.step()
            step += 1
        t_inst = _checked_temperature(atoms, s, step, name)
        if next_snap < len(snap_steps) and step == snap_steps[next_snap]:
            snap = _snapshot(atoms, calc, next_snap, step, s.timestep, t_inst)
            if directory is not None:
                _atomic_npz(_snapshot_path(directory, next_snap), **snap)
            snap["stress"] = snap["stress"] if snap["stress"].size == 6 else None
            memory.append(snap)
            next_snap += 1
            now = time.perf_counter()
            say(f"snapshot {next_snap}/{s.snapshots} step {step} T_inst={t_inst:.0f} K "
                f"E={snap['energy']:.4f} eV ({(now - t_chunk):.1f} s)")
            t_chunk = now
        if state_path is not None:
            save_md_state(state_path, atoms, step, get_state(dyn, rng),
                          next_snapshot=next_snap)
        if s.walltime is not None and time.perf_counter() - t_start > s.walltime \
                and step < total:
            raise LabelingError(name, "timeout", f"task walltime {s.walltime} s exceeded at "
                                f"step {step}/{total} (state saved; a retry resumes)")
    wall = time.perf_counter() - t_start
    snaps = read_snapshots(directory) if directory is not None else memory
    return AIMDResult(snapshots=snaps, steps_run=step - resumed_from, resumed_from=resumed_from,
                      wall_time=wall, calls=getattr(calc, "n_calls", 0) - calls0, log=lines)
