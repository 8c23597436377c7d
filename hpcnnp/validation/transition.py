"""The tetragonal -> cubic transition of LLZO in an NPT heating ramp.

Tetragonal LLZO (I4_1/acd, a = 13.134 Å, c = 12.663 Å, c/a = 0.964) orders its Li on
the garnet sites; on heating the Li sublattice disorders and the lattice becomes
cubic (Ia-3d, c/a = 1) at about 900 K in experiment and in MD
(Bernstein et al., Phys. Rev. Lett. 109, 205702 (2012),
https://doi.org/10.1103/PhysRevLett.109.205702).

Procedure
=========
1. :func:`npt_ramp` heats a tetragonal cell at constant pressure with a fully flexible
   cell, the thermostat target rising linearly from ``T_start`` to ``T_end``, and
   records the cell every ``sample_every`` steps -- with LAMMPS and the ``hpcnnp``
   plugin pair style (``fix npt ... tri``, production sizes) or with ASE's
   Langevin-BAOAB NPT integrator (small cells, any ASE calculator).
2. :func:`lattice_parameters` converts cells into a and c per conventional cell: the
   cell is ``repeat`` conventional cells; the c axis is the cell vector whose length
   differs most from the other two in the *first* frame (kept for the whole run);
   a is the mean of the other two.
3. :func:`analyse_ramp` averages a, c and c/a in temperature bins of the set-point
   temperature (mean ± standard error) and extracts the transition temperature with
   two stated criteria:

   * **sigmoid midpoint** (primary): least-squares fit
     c/a(T) = r_hi + (r_lo - r_hi) / (1 + exp((T - T_c)/w)); T_c ± its standard error;
   * **threshold**: the lowest bin temperature from which on |c/a - 1| < ``threshold``
     (default 0.005) in every hotter bin.

   The sigmoid is accepted only if its hot plateau is cubic within 2 x ``threshold``
   and the step is larger than ``threshold``.  If the sigmoid fit fails or is not
   accepted (no step to c/a ~ 1 in the range) the threshold value is reported;
   if neither applies, T_c is NaN ("no transition in the temperature range").

Pitfalls: a ramp that is too fast shifts T_c upwards (superheating); use >= 100 ps per
100 K in production and compare heating with cooling.  Small cells (one conventional
cell, 192 atoms) fluctuate strongly in c/a; 2x2x2 (1536 atoms) is the usual minimum.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from ase import units
from ase.calculators.lammps import Prism
from ase.md.langevinbaoab import LangevinBAOAB
from scipy.optimize import curve_fit

from hpcnnp.calculator import HDNNPCalculator
from hpcnnp.errors import HpcnnpError
from hpcnnp.md.plugin import lammps_plugin_path, preload_mpi
from hpcnnp.potential import Potential
from hpcnnp.units import EV_A3_GPA, atomic_mass

from .trajectory import thermalize

__all__ = ["lattice_parameters", "sigmoid", "fit_sigmoid", "threshold_temperature",
           "analyse_ramp", "TransitionResult", "npt_ramp", "DEFAULT_THRESHOLD"]

#: default |c/a - 1| below which a bin counts as cubic
DEFAULT_THRESHOLD = 0.005


def lattice_parameters(cells, repeat=(1, 1, 1), c_axis=None):
    """a, c per conventional cell from cells (F, 3, 3) in Å.

    Returns
    -------
    a : (F,), c : (F,), c_axis : int
    """
    cells = np.asarray(cells, dtype=float)
    if cells.ndim == 2:
        cells = cells[None]
    lengths = np.linalg.norm(cells, axis=2) / np.asarray(repeat, dtype=float)
    if c_axis is None:
        first = lengths[0]
        dev = [abs(first[k] - 0.5 * (first[(k + 1) % 3] + first[(k + 2) % 3]))
               for k in range(3)]
        c_axis = int(np.argmax(dev)) if max(dev) > 1e-3 * first.mean() else 2
    others = [k for k in range(3) if k != c_axis]
    return lengths[:, others].mean(axis=1), lengths[:, c_axis], int(c_axis)


def sigmoid(T, r_lo, r_hi, Tc, w):
    """r_hi + (r_lo - r_hi) / (1 + exp((T - Tc) / w))."""
    x = np.clip((np.asarray(T, dtype=float) - Tc) / w, -500, 500)
    return r_hi + (r_lo - r_hi) / (1.0 + np.exp(x))


def fit_sigmoid(T, ca, ca_err=None):
    """Fit :func:`sigmoid` to c/a(T); returns (params, standard errors) or None."""

    T = np.asarray(T, dtype=float)
    ca = np.asarray(ca, dtype=float)
    if len(T) < 5:
        return None
    k = max(1, len(T) // 6)
    r_lo, r_hi = ca[:k].mean(), ca[-k:].mean()
    if abs(r_hi - r_lo) < 1e-12:
        return None
    mid = 0.5 * (r_lo + r_hi)
    cross = np.flatnonzero(np.diff(np.sign(ca - mid)) != 0)
    tc0 = T[cross[0]] if len(cross) else T.mean()
    span = T.max() - T.min()
    sigma = None
    if ca_err is not None:
        e = np.asarray(ca_err, dtype=float)
        if np.all(np.isfinite(e)) and np.all(e > 0):
            sigma = e
    try:
        p, cov = curve_fit(sigmoid, T, ca, p0=[r_lo, r_hi, tc0, span / 20.0], sigma=sigma,
                           bounds=([-np.inf, -np.inf, T.min(), span * 1e-4],
                                   [np.inf, np.inf, T.max(), span]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    if not np.all(np.isfinite(p)) or not np.isfinite(err[2]):
        return None
    if err[2] > span or T.min() >= p[2] or p[2] >= T.max():
        return None
    return p, err


def threshold_temperature(T, ca, threshold=DEFAULT_THRESHOLD):
    """Lowest T from which on |c/a - 1| < threshold in every hotter point (NaN if none)."""
    T = np.asarray(T, dtype=float)
    ok = np.abs(np.asarray(ca, dtype=float) - 1.0) < threshold
    if not ok[-1]:
        return float("nan")
    bad = np.flatnonzero(~ok)
    first = bad[-1] + 1 if len(bad) else 0
    return float(T[first])


@dataclass
class TransitionResult:
    """Binned lattice parameters (Å) vs T (K) and the transition temperature (K)."""

    T: np.ndarray
    a: np.ndarray
    a_err: np.ndarray
    c: np.ndarray
    c_err: np.ndarray
    ca: np.ndarray
    ca_err: np.ndarray
    Tc: float
    Tc_err: float
    Tc_sigmoid: float
    Tc_sigmoid_err: float
    Tc_threshold: float
    threshold: float
    criterion: str
    criterion_short: str
    sigmoid_params: np.ndarray | None = None
    c_axis: int = 2
    raw: dict = field(default_factory=dict)

    def sigmoid(self, T):
        return sigmoid(T, *self.sigmoid_params)

    def __post_init__(self):
        if self.sigmoid_params is None:
            self.sigmoid = None

    def csv(self):
        """Binned table as CSV text."""
        lines = ["T_K,a_A,a_err_A,c_A,c_err_A,c_over_a,c_over_a_err"]
        for row in zip(self.T, self.a, self.a_err, self.c, self.c_err, self.ca, self.ca_err):
            lines.append(",".join(f"{v:.6g}" for v in row))
        return "\n".join(lines) + "\n"


def _bins(T, values, width):
    """Mean and standard error of ``values`` in T bins; bins with fewer than half the
    median number of samples (partly filled edge bins) are dropped."""
    lo = np.floor(T.min() / width) * width
    idx = np.floor((T - lo) / width).astype(int)
    centres, means, errs = [], [], []
    keys, counts = np.unique(idx, return_counts=True)
    full = 0.5 * np.median(counts)
    for k, n in zip(keys, counts):
        if n < full:                # a partly filled edge bin: too few samples
            continue
        sel = idx == k
        v = values[sel]
        centres.append(T[sel].mean())
        means.append(v.mean(axis=0))
        errs.append(v.std(axis=0, ddof=1) / np.sqrt(len(v)) if len(v) > 1
                    else np.full(v.shape[1:], np.nan))
    return np.array(centres), np.array(means), np.array(errs)


def analyse_ramp(temperatures, cells, repeat=(1, 1, 1), c_axis=None, bin_width=50.0,
                 threshold=DEFAULT_THRESHOLD, raw=None):
    """Bin a heating ramp and extract T_c (see the module docstring).

    Parameters
    ----------
    temperatures : (F,) K
        Set-point (or instantaneous) temperature of each sample.
    cells : (F, 3, 3) Å
    repeat : 3 ints
        Conventional cells along each cell vector.
    bin_width : float, K
    threshold : float
        |c/a - 1| of the threshold criterion.
    """
    T = np.asarray(temperatures, dtype=float)
    a, c, axis = lattice_parameters(cells, repeat, c_axis)
    if len(T) != len(a):
        raise HpcnnpError(f"transition: {len(T)} temperatures for {len(a)} cells")
    Tb, m, e = _bins(T, np.column_stack([a, c, c / a]), float(bin_width))
    return transition_from_curve(Tb, m[:, 2], e[:, 2], a=m[:, 0], a_err=e[:, 0],
                                 c=m[:, 1], c_err=e[:, 1], threshold=threshold,
                                 c_axis=axis, raw=raw or {"T": T, "a": a, "c": c})


def transition_from_curve(T, ca, ca_err=None, a=None, a_err=None, c=None, c_err=None,
                          threshold=DEFAULT_THRESHOLD, c_axis=2, raw=None):
    """Transition temperature from a c/a(T) curve (already binned or smooth)."""
    T = np.asarray(T, dtype=float)
    ca = np.asarray(ca, dtype=float)
    nan = np.full(len(T), np.nan)
    ca_err = nan if ca_err is None else np.asarray(ca_err, dtype=float)
    fit = fit_sigmoid(T, ca, ca_err)
    if fit is not None:
        r_lo, r_hi = fit[0][0], fit[0][1]
        if abs(r_hi - 1.0) > 2.0 * threshold or abs(r_hi - r_lo) < threshold:
            fit = None                  # a step that does not end (nearly) cubic
    t_thr = threshold_temperature(T, ca, threshold)
    if fit is not None:
        p, err = fit
        tc, tc_err = float(p[2]), float(err[2])
        crit = ("midpoint of a sigmoid fit c/a(T) = r_hi + (r_lo - r_hi)/(1 + "
                "exp((T - T_c)/w))")
        short = "sigmoid midpoint"
    elif np.isfinite(t_thr):
        tc, tc_err = t_thr, float("nan")
        crit = f"lowest T from which on |c/a - 1| < {threshold:g} (sigmoid fit failed)"
        short = f"|c/a-1| < {threshold:g}"
    else:
        tc, tc_err = float("nan"), float("nan")
        crit = "no transition in the temperature range (no sigmoid step, c/a never ~ 1)"
        short = "none"
    return TransitionResult(
        T=T, a=nan if a is None else np.asarray(a), a_err=nan if a_err is None else a_err,
        c=nan if c is None else np.asarray(c), c_err=nan if c_err is None else c_err,
        ca=ca, ca_err=ca_err, Tc=tc, Tc_err=tc_err,
        Tc_sigmoid=float(fit[0][2]) if fit else float("nan"),
        Tc_sigmoid_err=float(fit[1][2]) if fit else float("nan"),
        Tc_threshold=t_thr, threshold=float(threshold), criterion=crit,
        criterion_short=short, sigmoid_params=None if fit is None else fit[0],
        c_axis=c_axis, raw=raw or {})


# ---------------------------------------------------------------------------------------
# NPT ramps
# ---------------------------------------------------------------------------------------

def npt_ramp(atoms, T_start, T_end, steps, calculator=None, potential_dir=None,
             engine="ase", timestep=1.0, sample_every=10, pressure=0.0, seed=0,
             progress=None):
    """Heat ``atoms`` at constant pressure; returns the samples.

    Parameters
    ----------
    atoms : ase.Atoms
        Start cell (e.g. tetragonal LLZO, a 2x2x2 supercell in production).
    T_start, T_end : float, K
        Linear ramp of the thermostat target.
    steps : int
        MD steps of the ramp.
    calculator : ASE calculator
        For ``engine="ase"``.
    potential_dir : path
        n2p2 potential folder, for ``engine="lammps"`` (the ``hpcnnp`` plugin).
    timestep : float, fs
    sample_every : int
        Steps between samples of the cell.
    pressure : float, GPa
    progress : callable(step, steps), optional

    Returns
    -------
    dict of arrays: ``time`` (fs), ``T_set``, ``T`` (instantaneous, K), ``cells`` (Å)
    """
    if int(steps) < int(sample_every) or int(sample_every) < 1:
        raise HpcnnpError("npt_ramp: need steps >= sample_every >= 1")
    runner = {"ase": _ramp_ase, "lammps": _ramp_lammps}.get(engine)
    if runner is None:
        raise HpcnnpError(f"npt_ramp: unknown engine {engine!r} (ase, lammps)")
    return runner(atoms, float(T_start), float(T_end), int(steps), calculator,
                  potential_dir, float(timestep), int(sample_every), float(pressure),
                  int(seed), progress)


def _ramp_ase(atoms, t0, t1, steps, calculator, potential_dir, dt, every, pressure, seed,
              progress):
    if calculator is None:
        if potential_dir is None:
            raise HpcnnpError("npt_ramp (ase): give a calculator or a potential folder")
        calculator = HDNNPCalculator(potential_dir)
    a = atoms.copy()
    a.calc = calculator
    rng = np.random.default_rng(seed)
    thermalize(a, t0, rng)
    with warnings.catch_warnings():          # "Using heuristic P_mass": intended
        warnings.filterwarnings("ignore", message="Using heuristic P_mass")
        dyn = LangevinBAOAB(a, dt * units.fs, temperature_K=t0,
                            externalstress=-pressure / EV_A3_GPA, hydrostatic=False,
                            T_tau=100.0 * units.fs, P_tau=1000.0 * units.fs, rng=rng)
    out = {"time": [], "T_set": [], "T": [], "cells": []}
    done = 0
    while done < steps:
        n = min(every, steps - done)
        target = t0 + (t1 - t0) * (done + n) / steps
        dyn.set_temperature(target)
        dyn.run(n)
        done += n
        out["time"].append(done * dt)
        out["T_set"].append(target)
        out["T"].append(a.get_temperature())
        out["cells"].append(a.cell.array.copy())
        if progress is not None:
            progress(done, steps)
    return {k: np.array(v) for k, v in out.items()}


def _ramp_lammps(atoms, t0, t1, steps, calculator, potential_dir, dt, every, pressure,
                 seed, progress):
    if potential_dir is None:
        raise HpcnnpError("npt_ramp (lammps): give the potential folder")
    pot = Potential.from_n2p2(potential_dir)
    plugin = lammps_plugin_path()
    preload_mpi()
    from lammps import lammps   # optional wheel; needs libmpi preloaded (preload_mpi)

    els = pot.elements
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(els))
    if missing:
        raise HpcnnpError(f"npt_ramp: elements {' '.join(missing)} are not part of the "
                          f"potential ({' '.join(els)})")
    p = Prism(atoms.get_cell())
    xhi, yhi, zhi, xy, xz, yz = p.get_lammps_prism()
    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        for c in ("units metal", "atom_style atomic", "atom_modify map array",
                  "boundary p p p",
                  f"region box prism 0 {xhi} 0 {yhi} 0 {zhi} {xy} {xz} {yz} units box",
                  f"create_box {len(els)} box"):
            lmp.command(c)
        types = [els.index(s) + 1 for s in symbols]
        pos = p.vector_to_lammps(atoms.get_positions(), wrap=True)
        lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types,
                         pos.ravel().tolist())
        for t, el in enumerate(els):
            lmp.command(f"mass {t + 1} {atomic_mass(el)}")
        lmp.command(f"plugin load {plugin}")
        lmp.command(f"pair_style hpcnnp {pot.cutoff + 0.01} dir {potential_dir}")
        lmp.command("pair_coeff * * " + " ".join(els))
        lmp.command(f"timestep {dt / 1000.0}")
        lmp.command(f"velocity all create {t0} {seed % 900000 + 1} dist gaussian "
                    "mom yes rot no")
        bar = pressure * 1.0e4
        lmp.command(f"fix ramp all npt temp {t0} {t1} {100 * dt / 1000.0} "
                    f"tri {bar} {bar} {1000 * dt / 1000.0}")
        lmp.command("thermo_style custom step temp pe vol")
        out = {"time": [], "T_set": [], "T": [], "cells": []}
        done = 0
        while done < steps:
            n = min(every, steps - done)
            lmp.command(f"run {n} start 0 stop {steps} pre {'yes' if done == 0 else 'no'} "
                        "post no")
            done += n
            boxlo, boxhi, bxy, byz, bxz, _, _ = lmp.extract_box()
            lx, ly, lz = (boxhi[k] - boxlo[k] for k in range(3))
            out["time"].append(done * dt)
            out["T_set"].append(t0 + (t1 - t0) * done / steps)
            out["T"].append(lmp.get_thermo("temp"))
            out["cells"].append(np.array([[lx, 0, 0], [bxy, ly, 0], [bxz, byz, lz]]))
            if progress is not None:
                progress(done, steps)
    finally:
        lmp.close()
    return {k: np.array(v) for k, v in out.items()}

