"""Exploration: Langevin MD driven by committee member 0, judged by the committee.

Each run starts from one of the campaign's structures at one temperature: initial
velocities from the Maxwell–Boltzmann distribution (centre of mass at rest), then
ASE's Langevin integrator (NVT) with member 0 as the calculator.  At step 0 and
every ``stride``-th step the frame is evaluated by all K members
(:func:`~hpcnnp.active.committee.committee_evaluate`): σ_F, σ_E and member 0's
extrapolation warnings.

A run ends early when a frame has two atoms closer than ``min_distance`` (the
network has no repulsive wall outside its data and an MD run can collapse) or
when the engine rejects the structure (atoms closer than 0.1 Å, non-finite
positions): that frame is recorded with status ``failed`` and the run stops.

Each run writes ``run_NNN.h5`` (H5MD: wrapped positions, image flags, box and the
observables ``sigma_f``, ``sigma_e``, ``n_extrapolation_warnings``,
``potential_energy``, ``temperature`` of the evaluated frames) and then
``run_NNN.json`` (the per-frame numbers; written last: its presence marks the run
as finished).  Small cells are the intended use (seconds per run); large
interfaces are better explored with LAMMPS (``hpcnnp md``) and judged afterwards
with :func:`evaluate_trajectory`.

Starting structures (:data:`STRUCTURE_SOURCES`): ``{file: PATH, index: I}`` (n2p2
``.data`` or any ASE format), ``{builder: NAME, options: {...}}`` (a builder of
the one table :data:`hpcnnp.structures.BUILDERS`) or ``{data: [I, ...]}``
(structures of the campaign's data set); ``repeat: [n1, n2, n3]`` makes a
supercell.  A builder option that is itself such an entry is built first, so
interfaces and grain boundaries can be explored::

    - builder: grain_boundary
      options: {atoms: {builder: llzo_cubic}, plane: [2, 3, 0], natoms: 800}
    - builder: interface
      options: {substrate: {builder: llzo_cubic}, sub_hkl: [0, 0, 1],
                film: {builder: lco}, film_hkl: [1, 0, 4], natoms: 600}
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import write_atomic
from hpcnnp.structures.builders import BUILDERS

__all__ = ["STRUCTURE_SOURCES", "starting_structures", "run_temperatures", "explore_run",
           "read_run_frames",
           "evaluate_trajectory", "FRAME_STATUS"]

#: status of an evaluated frame
FRAME_STATUS = ("ok", "failed")


# ---------------------------------------------------------------------------------------
# Starting structures
# ---------------------------------------------------------------------------------------

def _from_file(entry, data_path):
    path = entry["file"]
    index = int(entry.get("index", 0))
    if path.endswith(".data"):
        from hpcnnp.io import n2p2
        return [n2p2.read_data(path, index=index)[0]]
    import ase.io
    return [ase.io.read(path, index=index)]


def _from_builder(entry, data_path):
    name = entry["builder"]
    if name not in BUILDERS:
        raise HpcnnpError(f"unknown builder '{name}' (known: {', '.join(BUILDERS)})")
    options = {}
    for key, value in entry.get("options", {}).items():
        kinds = [k for k in STRUCTURE_SOURCES if isinstance(value, dict) and k in value]
        if len(kinds) == 1:                 # a structure argument built the same way
            value = STRUCTURE_SOURCES[kinds[0]](value, data_path)[0]
        options[key] = value
    try:
        return [BUILDERS[name].function(**options)]
    except TypeError as exc:
        raise HpcnnpError(f"builder '{name}': {exc}") from None


def _from_data(entry, data_path):
    from hpcnnp.io import n2p2

    images = n2p2.read_data(data_path)
    out = []
    for k in entry["data"]:
        if not -len(images) <= k < len(images):
            raise HpcnnpError(f"data index {k} out of range ({len(images)} structures "
                              f"in {data_path})")
        out.append(images[k])
    return out


#: source key of an exploration.structures entry -> reader(entry, data_path) -> [Atoms]
STRUCTURE_SOURCES = {"file": _from_file, "builder": _from_builder, "data": _from_data}


def starting_structures(entries, data_path):
    """The campaign's starting structures as a list of ase.Atoms (``info["name"]``
    set; calculators removed).

    Raises
    ------
    HpcnnpError
        Naming the entry (``exploration.structures[i]``) that could not be built.
    """
    out = []
    for i, entry in enumerate(entries):
        kind = next(k for k in STRUCTURE_SOURCES if k in entry)
        try:
            images = STRUCTURE_SOURCES[kind](entry, data_path)
        except (HpcnnpError, OSError, ValueError, IndexError) as exc:
            raise HpcnnpError(f"exploration.structures[{i}] ({kind}): {exc}") from None
        for j, atoms in enumerate(images):
            atoms = atoms.copy()
            atoms.calc = None
            if entry.get("repeat"):
                atoms = atoms.repeat(tuple(entry["repeat"]))
            label = entry.get("name") or (
                f"{kind}:{Path(entry['file']).name}" if kind == "file" else
                f"builder:{entry['builder']}" if kind == "builder" else "data")
            if kind == "data":
                label += f"[{entry['data'][j]}]"
            keep = {k: atoms.info[k] for k in ("structure_class",)
                    if isinstance(atoms.info.get(k), str)}
            atoms.info = {"name": label, **keep}
            if entry.get("temperatures"):
                atoms.info["temperatures"] = [float(t) for t in entry["temperatures"]]
            out.append(atoms)
            out += _variants(atoms, entry, i)
    return out


def run_temperatures(atoms, default):
    """Temperatures (K) at which a starting structure is explored: its own
    (``temperatures`` of its entry, kept in ``atoms.info`` through the extxyz file of
    the starting structures) or ``default``."""
    own = atoms.info.get("temperatures")
    if own is None:
        return [float(t) for t in default]
    return [float(t) for t in np.atleast_1d(own)]


def _variants(atoms, entry, i):
    """Strained copies (``strains``: isotropic linear strains, e.g. [-0.02, 0.03]) of a
    starting structure: the potential must also be right away from the equilibrium
    density (pressure at high T, a compressed boundary).  Same class name."""
    out = []
    for eps in entry.get("strains") or []:
        a = atoms.copy()
        a.set_cell(atoms.cell.array * (1.0 + float(eps)), scale_atoms=True)
        a.info = dict(atoms.info, variant=f"strain {float(eps):+.1%}")
        out.append(a)
    return out


# ---------------------------------------------------------------------------------------
# One exploration run (task body)
# ---------------------------------------------------------------------------------------

def shortest_distance(atoms, cutoff=3.0):
    """Shortest interatomic distance (Å) of a periodic structure; ``cutoff`` if no
    pair is closer than ``cutoff``."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, cutoff, self_interaction=False)
    return float(d.min()) if len(d) else float(cutoff)


def _wrap(atoms):
    cell = atoms.cell.array
    frac = np.linalg.solve(cell.T, atoms.positions.T).T
    image = np.floor(frac).astype(np.int32)
    return atoms.positions - image @ cell, image


#: the H5MD observables of an evaluated frame and the frame-row keys they come from
_OBSERVABLES = {"sigma_f": "sigma_f", "sigma_e": "sigma_e",
                "n_extrapolation_warnings": "n_warnings", "potential_energy": "energy",
                "temperature": "temperature"}


def _langevin(atoms, temperature, timestep, friction, seed):
    """Thermalised atoms and ASE's Langevin integrator (NVT, centre of mass fixed).

    Parameters
    ----------
    atoms : ase.Atoms
        With the driving calculator attached; momenta are set in place.
    temperature : float, K
    timestep : float, fs
    friction : float, 1/fs
    seed : int or sequence of int
        Spawns one stream for the initial velocities and one for the noise.

    Returns
    -------
    ase.md.langevin.Langevin
    """
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    try:                                   # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:                    # pragma: no cover - older ASE
        from ase.md.velocitydistribution import \
            MaxwellBoltzmannDistribution as thermalize_momenta

    ss = np.random.SeedSequence(seed)
    rng_v, rng_md = (np.random.default_rng(s) for s in ss.spawn(2))
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng_v)
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    return Langevin(atoms, timestep * units.fs, temperature_K=temperature,
                    friction=friction / units.fs, rng=rng_md, fixcm=False)


def _failed(row):
    """``row`` marked ``failed`` with NaN committee numbers (eV/Å, eV/atom, eV)."""
    row.update(sigma_f=float("nan"), sigma_e=float("nan"), n_warnings=0,
               energy=float("nan"), status="failed")
    return row


def _evaluate_frame(potentials, atoms, frame, step, min_distance):
    """Committee numbers of the current frame.

    Parameters
    ----------
    potentials : list of hpcnnp.potential.Potential
        The committee.
    atoms : ase.Atoms
    frame, step : int
        Frame number and MD step.
    min_distance : float, Å
        Closer atoms make the frame ``failed``.

    Returns
    -------
    row : dict
        ``frame``, ``step``, ``temperature`` (K), ``d_min`` (Å), ``sigma_f`` (eV/Å),
        ``sigma_e`` (eV/atom), ``n_warnings``, ``energy`` (member mean, eV), ``status``.
    ended : str or None
        Why the run has to stop (a failed frame), else None.
    """
    from hpcnnp.active.committee import committee_evaluate

    row = {"frame": frame, "step": step, "temperature": float(atoms.get_temperature())}
    try:
        row["d_min"] = (shortest_distance(atoms) if np.isfinite(atoms.positions).all()
                        else float("nan"))
        if row["d_min"] < min_distance:
            raise HpcnnpError(f"atoms closer than {min_distance} Å "
                              f"({row['d_min']:.2f} Å)")
        ev = committee_evaluate(potentials, atoms)
        row.update(sigma_f=ev["sigma_f"], sigma_e=ev["sigma_e"],
                   n_warnings=ev["n_warnings"], energy=float(ev["energies"].mean()),
                   status="ok")
        if not np.isfinite([ev["sigma_f"], ev["sigma_e"]]).all():
            raise HpcnnpError("non-finite committee forces or energies")
    except HpcnnpError as exc:
        _failed(row)
        return row, f"step {step}: {exc}"
    return row, None


def _store_frame(writer, atoms, row, timestep):
    """Write the frame of ``row`` to the H5MD ``writer`` if its positions are finite
    (time in ps from the step and ``timestep`` in fs); sets ``row["stored"]``."""
    row["stored"] = bool(np.isfinite(atoms.positions).all())
    if row["stored"]:
        pos, image = _wrap(atoms)
        step = row["step"]
        writer.write_frame(step, step * timestep * 1e-3, pos, atoms.cell.array,
                           image=image, observables={
                               name: row[key] for name, key in _OBSERVABLES.items()})


def explore_run(committee, atoms, temperature, steps, stride, timestep, friction, seed,
                output, min_distance=0.5):
    """One exploration MD run; writes ``output``.h5 and ``output``.json.

    Parameters
    ----------
    committee : list of path
        Member folders (member 0 drives the MD).
    atoms : ase.Atoms
        Starting structure (periodic).
    temperature : float, K
    steps : int
        MD steps.
    stride : int
        Evaluate the committee every ``stride`` steps (and at step 0).
    timestep : float, fs
    friction : float, 1/fs
        Langevin friction.
    seed : int or sequence of int
        Seed of the initial velocities and the Langevin noise.
    output : path
        File stem: ``output.h5`` (H5MD) and ``output.json`` (per-frame numbers,
        written last).
    min_distance : float, Å
        A frame with atoms closer than this is ``failed`` and ends the run.

    Returns
    -------
    dict
        The content of ``output.json``: ``frames`` (list of dicts with ``frame``,
        ``step``, ``sigma_f`` eV/Å, ``sigma_e`` eV/atom, ``n_warnings``,
        ``energy`` (member mean, eV), ``temperature`` K, ``status``), ``ended``
        (None or why the run stopped early), ``name``, ``temperature``.
    """
    from hpcnnp.active.committee import load_committee
    from hpcnnp.calculator import HDNNPCalculator
    from hpcnnp.io.h5md import H5MDWriter

    output = Path(output)
    marker = output.with_suffix(".json")
    if marker.is_file():
        return json.loads(marker.read_text())
    if not np.asarray(atoms.pbc).all():
        raise HpcnnpError(f"{atoms.info.get('name', 'structure')}: exploration needs a "
                          "periodic cell (pbc=True; use a vacuum gap for slabs)")
    potentials = load_committee(committee)
    atoms = atoms.copy()
    atoms.calc = HDNNPCalculator(potentials[0])
    dyn = _langevin(atoms, temperature, timestep, friction, seed)
    frames, ended = [], None
    h5 = output.with_suffix(".h5")
    with H5MDWriter(h5, atoms, fields=("position", "image"), observables=tuple(_OBSERVABLES),
                    metadata={"temperature_K": temperature, "timestep_fs": timestep,
                              "stride": stride}) as writer:
        step = 0
        while True:
            row, ended = _evaluate_frame(potentials, atoms, len(frames), step, min_distance)
            _store_frame(writer, atoms, row, timestep)
            frames.append(row)
            if ended is not None or step + stride > steps:
                break
            try:
                dyn.run(stride)
            except HpcnnpError as exc:            # the engine rejected a structure
                ended = f"after step {step}: {exc}"
                row = _failed({"frame": len(frames), "step": step + stride,
                               "temperature": float("nan"), "d_min": float("nan")})
                row["stored"] = False
                frames.append(row)
                break
            step += stride
    info = {"name": atoms.info.get("name", ""), "variant": atoms.info.get("variant", ""),
            "temperature": float(temperature),
            "n_atoms": len(atoms), "steps": int(steps), "stride": int(stride),
            "ended": ended, "frames": frames, "trajectory": h5.name}
    write_atomic(marker, json.dumps(info, indent=1))
    return info


def read_run_frames(output, frames=None):
    """ase.Atoms of the stored frames of a run (``output`` stem or .h5 path).

    ``frames``: list of frame numbers (the ``frame`` of ``output.json``); default all
    stored frames.  Each Atoms gets ``info`` name, temperature, frame, step.
    """
    from hpcnnp.io.h5md import H5MDTrajectory

    output = Path(output)
    info = json.loads(output.with_suffix(".json").read_text())
    stored = [r for r in info["frames"] if r.get("stored", True)]
    position = {r["frame"]: k for k, r in enumerate(stored)}
    wanted = [r["frame"] for r in stored] if frames is None else list(frames)
    out = []
    with H5MDTrajectory(output.with_suffix(".h5")) as traj:
        for f in wanted:
            a = traj.atoms(position[f])
            a.info = {"name": info["name"], "temperature": info["temperature"], "frame": f,
                      "step": int(info["frames"][f]["step"])}
            out.append(a)
    return out


def evaluate_trajectory(potentials, images):
    """Committee numbers of given frames (e.g. a LAMMPS trajectory): a list of
    dicts ``sigma_f``, ``sigma_e``, ``n_warnings``, ``energy``, ``status``."""
    from hpcnnp.active.committee import committee_evaluate

    rows = []
    for atoms in images:
        try:
            ev = committee_evaluate(potentials, atoms)
            rows.append({"sigma_f": ev["sigma_f"], "sigma_e": ev["sigma_e"],
                         "n_warnings": ev["n_warnings"],
                         "energy": float(ev["energies"].mean()), "status": "ok"})
        except HpcnnpError:
            rows.append({"sigma_f": float("nan"), "sigma_e": float("nan"), "n_warnings": 0,
                         "energy": float("nan"), "status": "failed"})
    return rows
