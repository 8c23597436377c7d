"""Reference calculators ("labelers"): a table of ASE calculator factories.

A labeler turns a structure into the reference energy, forces and (optionally)
stress that the HDNNP is trained on.  Each entry of :data:`LABELERS` is a class
that knows its options and their defaults, checks that its program and data are
there, and builds an ASE calculator; :func:`get_labeler` returns that
calculator wrapped in a :class:`LabelerCalculator`, which

* evaluates energy, forces and stress in one call and checks them (finite
  numbers, right shapes) -- a NaN never reaches a data set;
* turns every failure of the program (SCF not converged, crash, timeout, NaN)
  into a :class:`LabelingError` naming the labeler, so that a campaign can
  record the task as failed and go on;
* carries ``settings`` (every option, defaults filled in) for the provenance of
  each labelled structure and for the task hashes of a campaign.

>>> calc = get_labeler("chgnet", threads=1)                   # doctest: +SKIP
>>> atoms.calc = calc; atoms.get_forces()                     # doctest: +SKIP
>>> calc.settings                                             # doctest: +SKIP
{'name': 'chgnet', 'model': '0.3.0', 'device': 'cpu', 'threads': 1, 'stress': True}

The labelers
============

``chgnet`` (default, embedded)
    The CHGNet universal potential (B. Deng et al., Nat. Mach. Intell. 5, 1031
    (2023), doi:10.1038/s42256-023-00716-3).  Its weights ship inside the
    ``chgnet`` wheel, so it works offline on a laptop.  **It is not DFT**: it is
    a graph network fitted to the Materials Project trajectory set (PBE and
    PBE+U, U(Co) = 3.32 eV for oxides), i.e. a *teacher* that stands in for the
    reference method so that the whole pipeline can run end to end.  A
    potential trained on CHGNet labels reproduces CHGNet, not PBE; use ``cp2k``
    or ``vasp`` for publishable reference data.
``xtb``
    GFN1-xTB (C. Bannwarth et al., WIREs Comput. Mol. Sci. 11, e1493 (2021),
    doi:10.1002/wcms.1493) through tblite's ASE calculator.  Defaults that
    converge on Co-doped LLZO with periodic cells: electronic temperature
    3000 K (Fermi smearing), Broyden mixer damping 0.2, 300 SCF iterations;
    tblite's periodic code is Γ-point only.  (GFN2 did not converge on Co-doped
    LLZO in 300 iterations on our tests.)  Cheap tight binding, again not DFT.
``cp2k``
    Kohn-Sham DFT with CP2K's Quickstep (GPW): PBE, GTH pseudopotentials
    (GTH-PBE-qN), DZVP-MOLOPT-SR-GTH basis sets (BASIS_MOLOPT; La from
    BASIS_MOLOPT_UCL), plane-wave cutoff 400 Ry / relative cutoff 50 Ry, Γ only.
    SCF by orbital transformation (``scf: ot``, insulators, fastest) or by
    diagonalisation with Fermi-Dirac smearing and Broyden mixing
    (``scf: smearing``, robust for the metallic snapshots of hot melts); UKS
    with the lowest multiplicity when the cell has an odd number of electrons;
    ASPC wavefunction extrapolation (the CP2K shell stays alive for a whole
    trajectory, so successive MD steps start from extrapolated orbitals);
    analytic stress.  The input is written here (:meth:`Cp2kLabeler.input_text`)
    and run through ASE's ``cp2k_shell`` calculator.  An SCF that does not
    converge is a :class:`LabelingError` (never a silently unconverged label).
``vasp`` / ``espresso``
    ASE's calculators for users who have the programs: the options are passed
    through; a missing program or pseudopotential is an error at set-up.
``emt``
    ASE's EMT (Al, Cu, Ag, Au, Ni, Pd, Pt, H, C, N, O), for tests only.
``python``
    Any ASE calculator: ``factory: "module:function"`` or
    ``"path/to/file.py:function"`` (called with the remaining options), e.g. a
    committee HDNNP or another machine-learned potential.

MPI launch
----------
``cp2k``, ``vasp`` and ``espresso`` take ``launcher`` (a command prefix with
``{ranks}`` and ``{threads}`` filled in, e.g. ``"srun -n {ranks} --cpu-bind=cores"``
or ``"mpirun -np {ranks}"``), ``ranks`` and ``threads`` (``OMP_NUM_THREADS`` of
the program).  A campaign can instead set the prefix from its site
(``launcher: site`` -> :meth:`hpcnnp.hpc.sites.Site.mpi_command`).  The MPI of
the launcher must be the one the program was built with (Debian's ``cp2k`` uses
Open MPI's ``mpirun``, not the ``mpich`` wheel's ``mpiexec``).

Extending
---------
A new labeler is a :class:`Labeler` subclass added to :data:`LABELERS`:
``options`` (name -> default), ``check()`` (program/data present) and
``build(directory)`` (the ASE calculator); optionally ``after(calc)`` to
inspect the program's output for failures.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import re
import shlex
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from hpcnnp.errors import HpcnnpError

__all__ = ["LabelingError", "LabelerError", "Labeler", "LabelerCalculator", "LABELERS",
           "get_labeler", "make_labeler", "labeler_settings", "single_point",
           "ChgnetLabeler", "XtbLabeler", "Cp2kLabeler", "VaspLabeler", "EspressoLabeler",
           "EmtLabeler", "PythonLabeler"]


class LabelerError(HpcnnpError, ValueError):
    """A labeler cannot be set up: unknown name or option, program or data missing."""


class LabelingError(HpcnnpError, RuntimeError):
    """A labeling (single point) failed: SCF not converged, program crashed or timed
    out, or energy/forces/stress not finite.  A campaign records the task as failed;
    nothing of it is written into the data set.

    Attributes
    ----------
    labeler : str
        Name of the labeler.
    reason : str
        Short category: ``"scf"``, ``"crash"``, ``"timeout"``, ``"nan"``, ``"md"``.
    """

    def __init__(self, labeler, reason, message):
        self.labeler = labeler
        self.reason = reason
        super().__init__(f"labeler {labeler}: {reason}: {message}")


# ---------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------

class Labeler:
    """A reference method: its options (with defaults) and how to build its calculator.

    Parameters
    ----------
    **options
        Options of this labeler (see :attr:`options`); unknown names raise
        :class:`LabelerError` listing the known ones.  Values are converted to
        the type of the default where the default is a bool, int or float.

    Attributes
    ----------
    name : str
        Key in :data:`LABELERS`.
    options : dict
        Option name -> default (``None``: no default / automatic).
    settings : dict
        ``{"name": name, **options}`` with defaults filled in (JSON-serialisable).
    """

    name = ""
    summary = ""
    options: dict = {}
    #: options that do not change the labels (excluded from :meth:`label_settings`,
    #: so that e.g. more MPI ranks do not invalidate finished campaign tasks)
    runtime_options: tuple = ()

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise LabelerError(
                f"labeler {self.name}: unknown option(s) {', '.join(unknown)}; known options: "
                f"{', '.join(sorted(self.options)) or 'none'}")
        settings = {}
        for key, default in self.options.items():
            value = options.get(key, default)
            settings[key] = _coerce(self.name, key, value, default)
        self.settings = {"name": self.name, **settings}
        self.validate()

    # -- to override ---------------------------------------------------------------

    def validate(self):
        """Check option values (raise :class:`LabelerError`)."""

    def check(self, elements=()):
        """Check that the program and its data for *elements* are present.

        Raises
        ------
        LabelerError
            With what is missing and how to get it.
        """

    def build(self, directory):
        """The ASE calculator (running its files, if any, in *directory*)."""
        raise NotImplementedError

    def after(self, calc):
        """Inspect *calc* after a successful evaluation; raise LabelingError on failure."""

    def abort(self, calc):
        """Stop a running evaluation of *calc* (for timeouts); best effort."""

    def close(self, calc):
        """Release the calculator's resources (child processes)."""
        close = getattr(calc, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()

    def versions(self):
        """Versions of the program/packages (provenance only, not hashed)."""
        return {}

    # -- shared ------------------------------------------------------------------------

    def label_settings(self):
        """Settings that determine the labels (hashed by campaigns)."""
        return {k: v for k, v in self.settings.items() if k not in self.runtime_options}

    def calculator(self, directory=None):
        """A :class:`LabelerCalculator` of this labeler."""
        return LabelerCalculator(self, directory=directory)

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.settings.items() if k != "name")
        return f"{type(self).__name__}({opts})"


def _coerce(name, key, value, default):
    if value is None or default is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "yes", "on", "1"):
                    return True
                if low in ("false", "no", "off", "0"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int) and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float) and not isinstance(value, bool):
            out = float(value)
            if not math.isfinite(out):
                raise ValueError(value)
            return out
    except (TypeError, ValueError):
        raise LabelerError(f"labeler {name}: option {key} must be a "
                           f"{type(default).__name__}, got {value!r}") from None
    return value


def _positive(labeler, key, minimum=0.0, strict=True):
    value = labeler.settings[key]
    if value is None:
        return
    bad = value <= minimum if strict else value < minimum
    if bad:
        raise LabelerError(f"labeler {labeler.name}: option {key} must be "
                           f"{'>' if strict else '>='} {minimum}, got {value}")


def _check_launcher(labeler):
    """The launcher's program must exist (``site`` is resolved by a campaign)."""
    launcher = labeler.settings.get("launcher")
    if launcher and launcher != "site":
        words = _launch_prefix(labeler)
        if words and shutil.which(words[0]) is None:
            raise LabelerError(f"labeler {labeler.name}: MPI launcher {words[0]!r} not found "
                               f"on PATH (option launcher={launcher!r})")


def _launch_prefix(labeler):
    """The MPI launch prefix of a labeler as an argument list ('' -> [])."""
    launcher = labeler.settings.get("launcher")
    if not launcher:
        return []
    if launcher == "site":
        raise LabelerError(f"labeler {labeler.name}: launcher 'site' is resolved by a "
                           "campaign (hpcnnp sample --site NAME); give a command prefix "
                           "such as 'mpirun -np {ranks}' to use the labeler on its own")
    if isinstance(launcher, (list, tuple)):
        return [str(t) for t in launcher]
    try:
        text = str(launcher).format(ranks=labeler.settings.get("ranks") or 1,
                                    threads=labeler.settings.get("threads") or 1)
    except (KeyError, IndexError, ValueError) as exc:
        raise LabelerError(f"labeler {labeler.name}: launcher {launcher!r}: only {{ranks}} "
                           f"and {{threads}} may be filled in ({exc})") from None
    return shlex.split(text)


def _which(labeler, program):
    """Absolute path of the first word of *program*, else LabelerError."""
    words = shlex.split(program)
    if not words:
        raise LabelerError(f"labeler {labeler.name}: empty command")
    found = shutil.which(words[0])
    if found is None:
        raise LabelerError(f"labeler {labeler.name}: program {words[0]!r} not found on PATH "
                           f"(option command={program!r})")
    return found


# ---------------------------------------------------------------------------------------
# The checked calculator
# ---------------------------------------------------------------------------------------

class LabelerCalculator(Calculator):
    """ASE calculator that evaluates a :class:`Labeler` and checks every result.

    Energy, forces (and stress for periodic cells when the labeler provides it
    and ``stress`` is on) are computed together on the first request.  Any
    exception of the underlying calculator, a non-finite or malformed result or
    a failure found by :meth:`Labeler.after` raises :class:`LabelingError`.

    Parameters
    ----------
    labeler : Labeler
    directory : str or path, optional
        Working folder for programs that write files (default: a temporary
        folder, removed by :meth:`close`).

    Attributes
    ----------
    settings : dict
        The labeler's settings (provenance).
    n_calls : int
        Number of evaluations so far.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, labeler, directory=None):
        super().__init__()
        self.labeler = labeler
        self.settings = dict(labeler.settings)
        self._own_dir = directory is None
        self._dir = None if directory is None else Path(directory)
        self._inner = None
        self.n_calls = 0

    @property
    def name(self):
        return self.labeler.name

    @property
    def inner(self):
        """The underlying ASE calculator (built on first use)."""
        if self._inner is None:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix=f"hpcnnp-{self.labeler.name}-"))
            self._dir.mkdir(parents=True, exist_ok=True)
            try:
                self._inner = self.labeler.build(self._dir)
            except HpcnnpError:
                raise
            except Exception as exc:
                raise LabelingError(self.labeler.name, "crash",
                                    f"cannot start: {type(exc).__name__}: {exc}") from exc
        return self._inner

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        name = self.labeler.name
        inner = self.inner
        want_stress = (bool(self.labeler.settings.get("stress", True))
                       and "stress" in getattr(inner, "implemented_properties", ())
                       and bool(np.all(atoms.pbc)) and atoms.cell.rank == 3)
        if "stress" in properties and not want_stress:
            raise LabelingError(name, "crash", "stress requested but this labeler does not "
                                "compute it here (option stress off, labeler without "
                                "stress, or a cell that is not periodic in 3 directions)")
        timeout = self.labeler.settings.get("timeout")
        timer = None
        fired = threading.Event()
        if timeout:
            def expire():
                fired.set()
                self.labeler.abort(inner)
            timer = threading.Timer(float(timeout), expire)
            timer.daemon = True
            timer.start()
        work = atoms.copy()
        work.calc = None
        try:
            energy = inner.get_potential_energy(work)
            free = inner.results.get("free_energy", energy)
            forces = inner.get_forces(work)
            stress = inner.get_stress(work) if want_stress else None
        except HpcnnpError as exc:
            if fired.is_set():
                raise LabelingError(name, "timeout", f"no result within {timeout} s") from exc
            raise
        except Exception as exc:
            if fired.is_set():
                raise LabelingError(name, "timeout", f"no result within {timeout} s") from exc
            reason = "scf" if "converge" in str(exc).lower() else "crash"
            raise LabelingError(name, reason, f"{type(exc).__name__}: {exc}") from exc
        finally:
            if timer is not None:
                timer.cancel()
        if fired.is_set():
            raise LabelingError(name, "timeout", f"no result within {timeout} s")
        self.labeler.after(inner)
        n = len(atoms)
        results = {}
        for key, value, shape in (("energy", energy, ()), ("free_energy", free, ()),
                                  ("forces", forces, (n, 3)),
                                  ("stress", stress, (6,))):
            if value is None:
                continue
            arr = np.array(value, dtype=float)
            if arr.shape == (3, 3) and key == "stress":
                arr = arr.ravel()[[0, 4, 8, 5, 2, 1]]
            if arr.shape != shape:
                raise LabelingError(name, "crash", f"{key} has shape {arr.shape}, "
                                    f"expected {shape}")
            if not np.all(np.isfinite(arr)):
                bad = "NaN" if np.any(np.isnan(arr)) else "infinite"
                raise LabelingError(name, "nan", f"{bad} {key} for {atoms.get_chemical_formula()}")
            results[key] = float(arr) if shape == () else arr
        self.results = results
        self.n_calls += 1

    def close(self):
        """Stop child processes and remove the temporary folder (if it made one)."""
        if self._inner is not None:
            self.labeler.close(self._inner)
            self._inner = None
        if self._own_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()


# ---------------------------------------------------------------------------------------
# CHGNet
# ---------------------------------------------------------------------------------------

_CHGNET_MODELS = {}


class ChgnetLabeler(Labeler):
    """CHGNet universal potential (offline; a PBE(+U)-trained *teacher*, not DFT)."""

    name = "chgnet"
    summary = "CHGNet universal potential (embedded default; PBE(+U)-trained stand-in, not DFT)"
    options = {"model": "0.3.0", "device": "cpu", "threads": 1, "stress": True,
               "timeout": None}
    runtime_options = ("device", "threads", "timeout")

    def validate(self):
        _positive(self, "threads")

    def check(self, elements=()):
        if importlib.util.find_spec("chgnet") is None:
            raise LabelerError("labeler chgnet: the chgnet package is not installed "
                               "(pip install torch==<cpu wheel> chgnet)")

    def build(self, directory):
        self.check()
        import torch
        torch.set_num_threads(int(self.settings["threads"]))
        # chgnet converts a tensor that requires grad to a scalar on every call
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad",
                                category=UserWarning)
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator
        key = (self.settings["model"], self.settings["device"])
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            model = _CHGNET_MODELS.get(key)
            if model is None:   # one model per process (a Parsl worker runs many tasks)
                model = CHGNet.load(model_name=key[0], use_device=key[1], verbose=False)
                _CHGNET_MODELS[key] = model
            calc = CHGNetCalculator(model=model, use_device=self.settings["device"])
        return calc

    def versions(self):
        out = {}
        for pkg in ("chgnet", "torch"):
            with contextlib.suppress(Exception):
                out[pkg] = importlib.import_module(pkg).__version__
        return out


# ---------------------------------------------------------------------------------------
# GFN1-xTB (tblite)
# ---------------------------------------------------------------------------------------

class XtbLabeler(Labeler):
    """GFN1-xTB through tblite (electronic temperature 3000 K, damping 0.2, Γ only)."""

    name = "xtb"
    summary = "GFN1-xTB via tblite (T_el 3000 K, mixer damping 0.2, Γ only)"
    options = {"method": "GFN1-xTB", "electronic_temperature": 3000.0, "mixer_damping": 0.2,
               "max_iterations": 300, "accuracy": 1.0, "threads": 1, "stress": True,
               "timeout": None, "kpoints": "gamma"}
    runtime_options = ("threads", "timeout")

    def validate(self):
        _positive(self, "electronic_temperature", strict=False)
        _positive(self, "max_iterations")
        _positive(self, "threads")
        if not 0 < self.settings["mixer_damping"] <= 1:
            raise LabelerError("labeler xtb: option mixer_damping must be in (0, 1]")
        if self.settings["method"] not in ("GFN1-xTB", "GFN2-xTB", "IPEA1-xTB"):
            raise LabelerError("labeler xtb: method must be GFN1-xTB, GFN2-xTB or IPEA1-xTB")
        if str(self.settings["kpoints"]).lower() != "gamma":
            raise LabelerError("labeler xtb: tblite's periodic code is Γ-point only "
                               "(kpoints: gamma)")

    def check(self, elements=()):
        if importlib.util.find_spec("tblite") is None:
            raise LabelerError("labeler xtb: the tblite package is not installed "
                               "(pip install tblite)")

    def build(self, directory):
        self.check()
        # tblite uses OpenMP: the thread count is read when the library starts
        os.environ["OMP_NUM_THREADS"] = str(int(self.settings["threads"]))
        from tblite.ase import TBLite
        s = self.settings
        return TBLite(method=s["method"], electronic_temperature=s["electronic_temperature"],
                      mixer_damping=s["mixer_damping"], max_iterations=s["max_iterations"],
                      accuracy=s["accuracy"], verbosity=0)

    def versions(self):
        with contextlib.suppress(Exception):
            from importlib.metadata import version
            return {"tblite": version("tblite")}
        return {}


# ---------------------------------------------------------------------------------------
# CP2K
# ---------------------------------------------------------------------------------------

#: Folders searched for CP2K's basis/potential files (after $CP2K_DATA_DIR)
CP2K_DATA_DIRS = ("/usr/share/cp2k", "/usr/share/cp2k/data", "/opt/cp2k/data",
                  "/usr/local/share/cp2k/data")
#: basis files searched, in order, for each element (La is only in BASIS_MOLOPT_UCL)
CP2K_BASIS_FILES = ("BASIS_MOLOPT", "BASIS_MOLOPT_UCL")
CP2K_POTENTIAL_FILE = "GTH_POTENTIALS"
#: cp2k_shell executables tried in order when ``command`` is not given
CP2K_SHELLS = ("cp2k_shell.psmp", "cp2k_shell.ssmp", "cp2k_shell.popt", "cp2k_shell.sopt",
               "cp2k_shell", "cp2k.psmp -s", "cp2k.ssmp -s")


class Cp2kLabeler(Labeler):
    """Kohn-Sham DFT with CP2K (GPW, PBE, GTH, DZVP-MOLOPT-SR-GTH), input written here."""

    name = "cp2k"
    summary = "CP2K Quickstep GPW: PBE, GTH-PBE, DZVP-MOLOPT-SR-GTH (La: MOLOPT_UCL), Γ"
    options = {
        "command": None, "launcher": None, "ranks": 1, "threads": 1,
        "data_dir": None,
        "xc": "PBE", "basis": "DZVP-MOLOPT-SR-GTH",
        "cutoff": 400.0, "rel_cutoff": 50.0, "ngrids": 4,     # Ry
        "scf": "ot",                                          # ot | smearing
        "eps_scf": 1e-6, "max_scf": 50, "outer_scf": 10,      # outer loops (OT)
        "electronic_temperature": 1000.0,                     # K (smearing)
        "added_mos": None,                                    # smearing; None: auto
        "mixing_alpha": 0.2,
        "eps_default": 1e-12,
        "charge": 0, "uks": None, "multiplicity": None,       # None: automatic
        "extrapolation": "ASPC", "extrapolation_order": 3,
        "stress": True, "timeout": None,
    }
    runtime_options = ("command", "launcher", "ranks", "threads", "data_dir", "timeout")

    def validate(self):
        s = self.settings
        for key in ("cutoff", "rel_cutoff", "ngrids", "eps_scf", "max_scf", "ranks",
                    "threads", "eps_default"):
            _positive(self, key)
        _positive(self, "outer_scf", strict=False)
        _positive(self, "electronic_temperature", strict=False)
        if s["scf"] not in ("ot", "smearing"):
            raise LabelerError(f"labeler cp2k: option scf must be 'ot' or 'smearing', "
                               f"got {s['scf']!r}")
        if s["multiplicity"] is not None and int(s["multiplicity"]) < 1:
            raise LabelerError("labeler cp2k: multiplicity must be >= 1")
        if s["extrapolation"] not in ("ASPC", "PS", "USE_PREV_WF", "USE_GUESS", "LINEAR_P",
                                      "FROZEN"):
            raise LabelerError(f"labeler cp2k: unknown extrapolation {s['extrapolation']!r}")

    # -- files -----------------------------------------------------------------------

    def data_dir(self):
        """The folder with BASIS_MOLOPT, BASIS_MOLOPT_UCL and GTH_POTENTIALS."""
        cands = [self.settings["data_dir"]] if self.settings["data_dir"] else \
            [os.environ.get("CP2K_DATA_DIR")] + list(CP2K_DATA_DIRS)
        for folder in filter(None, cands):
            if (Path(folder) / CP2K_POTENTIAL_FILE).is_file():
                return Path(folder)
        raise LabelerError(
            "labeler cp2k: no CP2K data folder with GTH_POTENTIALS found (looked in "
            f"{', '.join(str(c) for c in cands if c)}); install cp2k-data or set "
            "data_dir / $CP2K_DATA_DIR")

    def kinds(self, elements):
        """``{element: (basis file, basis name, potential name, valence electrons)}``.

        The basis entry ``El <basis> <basis>-qN`` is looked up in
        :data:`CP2K_BASIS_FILES` in order; the potential is ``GTH-<XC>-qN``.
        """
        folder = self.data_dir()
        basis = self.settings["basis"]
        xc = self.settings["xc"].upper()
        out = {}
        for el in elements:
            for fname in CP2K_BASIS_FILES:
                q = _basis_valence(folder / fname, el, basis)
                if q is not None:
                    out[el] = (fname, basis, f"GTH-{xc}-q{q}", q)
                    break
            else:
                raise LabelerError(f"labeler cp2k: no basis {basis} for {el} in "
                                   f"{', '.join(CP2K_BASIS_FILES)} ({folder})")
            if not _has_potential(folder / CP2K_POTENTIAL_FILE, el, out[el][2]):
                raise LabelerError(f"labeler cp2k: no potential {out[el][2]} for {el} in "
                                   f"{folder / CP2K_POTENTIAL_FILE}")
        return out

    def command(self):
        """The cp2k_shell command line (launcher prefix included)."""
        cmd = self.settings["command"]
        if not cmd:
            for cand in CP2K_SHELLS:
                if shutil.which(cand.split()[0]):
                    cmd = cand
                    break
            else:
                raise LabelerError("labeler cp2k: no CP2K shell found on PATH (tried "
                                   f"{', '.join(CP2K_SHELLS)}); install cp2k or set command")
        _which(self, cmd)
        prefix = ["env", f"OMP_NUM_THREADS={int(self.settings['threads'])}"] + \
            _launch_prefix(self)
        return " ".join(shlex.quote(t) for t in prefix) + " " + cmd

    def check(self, elements=()):
        _check_launcher(self)
        self.command()
        if elements:
            self.kinds(sorted(set(elements)))
        else:
            self.data_dir()

    def spin(self, atoms):
        """(uks, multiplicity) for *atoms*: UKS with multiplicity 2 for an odd number
        of electrons, RKS singlet otherwise, unless set in the options."""
        kinds = self.kinds(sorted(set(atoms.get_chemical_symbols())))
        n_el = sum(kinds[s][3] for s in atoms.get_chemical_symbols()) - int(self.settings["charge"])
        mult = self.settings["multiplicity"]
        uks = self.settings["uks"]
        if mult is None:
            mult = 2 if n_el % 2 else 1
        if uks is None:
            uks = bool(n_el % 2) or int(mult) != 1
        if (n_el + int(mult) - 1) % 2:
            raise LabelingError("cp2k", "crash", f"{n_el} electrons cannot have "
                                f"multiplicity {mult}")
        return bool(uks), int(mult), n_el

    def input_text(self, atoms):
        """The CP2K input template (everything but coordinates and cell, which the ASE
        calculator adds)."""
        s = self.settings
        elements = sorted(set(atoms.get_chemical_symbols()))
        kinds = self.kinds(elements)
        uks, mult, n_el = self.spin(atoms)
        lines = ["&GLOBAL", "  RUN_TYPE ENERGY_FORCE", "&END GLOBAL", "&FORCE_EVAL",
                 "  &DFT"]
        for fname in dict.fromkeys(k[0] for k in kinds.values()):
            lines.append(f"    BASIS_SET_FILE_NAME {self.data_dir() / fname}")
        lines.append(f"    POTENTIAL_FILE_NAME {self.data_dir() / CP2K_POTENTIAL_FILE}")
        if int(s["charge"]):
            lines.append(f"    CHARGE {int(s['charge'])}")
        if uks:
            lines.append("    UKS")
        lines.append(f"    MULTIPLICITY {mult}")
        lines += ["    &MGRID", f"      CUTOFF {s['cutoff']}", f"      REL_CUTOFF {s['rel_cutoff']}",
                  f"      NGRIDS {int(s['ngrids'])}", "    &END MGRID",
                  "    &QS", f"      EPS_DEFAULT {s['eps_default']:.1E}",
                  f"      EXTRAPOLATION {s['extrapolation']}",
                  f"      EXTRAPOLATION_ORDER {int(s['extrapolation_order'])}",
                  "    &END QS",
                  "    &SCF", f"      EPS_SCF {s['eps_scf']:.1E}", f"      MAX_SCF {int(s['max_scf'])}"]
        if s["scf"] == "ot":
            lines += ["      &OT", "        MINIMIZER DIIS",
                      "        PRECONDITIONER FULL_SINGLE_INVERSE", "      &END OT"]
            if int(s["outer_scf"]):
                lines += ["      &OUTER_SCF", f"        MAX_SCF {int(s['outer_scf'])}",
                          f"        EPS_SCF {s['eps_scf']:.1E}", "      &END OUTER_SCF"]
        else:
            added = s["added_mos"]
            if added is None:
                added = max(10, int(math.ceil(0.15 * n_el / 2)))
            lines += [f"      ADDED_MOS {int(added)}",
                      "      &DIAGONALIZATION", "        ALGORITHM STANDARD",
                      "      &END DIAGONALIZATION",
                      "      &SMEAR ON", "        METHOD FERMI_DIRAC",
                      f"        ELECTRONIC_TEMPERATURE [K] {s['electronic_temperature']}",
                      "      &END SMEAR",
                      "      &MIXING", "        METHOD BROYDEN_MIXING",
                      f"        ALPHA {s['mixing_alpha']}", "        NBROYDEN 8",
                      "      &END MIXING"]
        lines += ["      &PRINT", "        &RESTART OFF", "        &END RESTART",
                  "      &END PRINT", "    &END SCF",
                  "    &XC", f"      &XC_FUNCTIONAL {s['xc'].upper()}",
                  "      &END XC_FUNCTIONAL", "    &END XC", "  &END DFT", "  &SUBSYS"]
        for el in elements:
            _, basis, pot, _ = kinds[el]
            lines += [f"    &KIND {el}", f"      BASIS_SET {basis}", f"      POTENTIAL {pot}",
                      "    &END KIND"]
        lines += ["  &END SUBSYS", "&END FORCE_EVAL"]
        return "\n".join(lines) + "\n"

    def build(self, directory):
        self.check()
        return _Cp2kDeferred(self, Path(directory).resolve())

    def after(self, calc):
        calc.check_scf()

    def abort(self, calc):
        calc.kill()

    def versions(self):
        import subprocess
        for exe in ("cp2k.psmp", "cp2k.ssmp", "cp2k.popt", "cp2k"):
            if shutil.which(exe):
                with contextlib.suppress(Exception):
                    out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                         timeout=60).stdout
                    m = re.search(r"CP2K version\s+(\S+)", out)
                    if m:
                        return {"cp2k": m.group(1)}
                break
        return {}


def _basis_valence(path, element, basis):
    """Valence charge N of ``element basis ... basis-qN`` in a CP2K basis file."""
    if not path.is_file():
        return None
    pat = re.compile(rf"^\s*{re.escape(element)}\s+(.*)$")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = pat.match(line)
            if not m:
                continue
            names = m.group(1).split()
            if basis in names:
                for name in names:
                    q = re.search(r"-q(\d+)$", name)
                    if q:
                        return int(q.group(1))
    return None


def _has_potential(path, element, name):
    pat = re.compile(rf"^\s*{re.escape(element)}\s+.*\b{re.escape(name)}\b")
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(pat.match(line) for line in f)


class _Cp2kDeferred(Calculator):
    """ASE's CP2K calculator created on the first structure (the input depends on the
    elements and the electron count) and re-created when the composition changes."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, labeler, directory):
        super().__init__()
        self.labeler = labeler
        self.directory = str(directory)
        self._calc = None
        self._key = None
        self._out = None
        self._out_pos = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        from ase.calculators.cp2k import CP2K
        key = (tuple(self.atoms.numbers), )
        if self._calc is None or key != self._key:
            self.close()
            s = self.labeler.settings
            label = os.path.join(self.directory, "cp2k")
            self._calc = CP2K(command=self.labeler.command(), inp=self.labeler.input_text(self.atoms),
                              label=label, basis_set_file=None, potential_file=None,
                              basis_set=None, pseudo_potential=None, max_scf=None, xc=None,
                              cutoff=None, charge=0, uks=False, multiplicity=None,
                              stress_tensor=bool(s["stress"]), print_level="LOW",
                              poisson_solver=None)
            self._key = key
            self._out = Path(label + ".out")
            self._out_pos = 0
        calc = self._calc
        a = self.atoms.copy()
        calc.calculate(a, list(properties), system_changes)
        self.results = dict(calc.results)

    def check_scf(self):
        """Raise LabelingError if the last SCF in the output did not converge."""
        if self._out is None or not self._out.is_file():
            return
        with open(self._out, encoding="utf-8", errors="replace") as f:
            f.seek(self._out_pos)
            text = f.read()
            self._out_pos = f.tell()
        if re.search(r"SCF run NOT converged|Outer SCF loop NOT converged|"
                     r"outer SCF loop FAILED to converge", text, re.I):
            raise LabelingError("cp2k", "scf", f"SCF not converged (see {self._out})")

    def kill(self):
        shell = getattr(self._calc, "_shell", None)
        child = getattr(shell, "_child", None)
        if child is not None:
            with contextlib.suppress(Exception):
                child.kill()

    def close(self):
        if self._calc is not None:
            with contextlib.suppress(Exception, AssertionError):
                self._calc.close()
            self._calc = None


# ---------------------------------------------------------------------------------------
# VASP, Quantum ESPRESSO (configuration only: for users who have them)
# ---------------------------------------------------------------------------------------

class VaspLabeler(Labeler):
    """VASP through ASE (PBE by default; Γ only); needs the program and POTCARs."""

    name = "vasp"
    summary = "VASP via ASE (needs vasp_std and $VASP_PP_PATH)"
    options = {"command": "vasp_std", "launcher": None, "ranks": 1, "threads": 1,
               "pp_path": None, "xc": "PBE", "encut": 520.0, "ediff": 1e-6, "ismear": 0,
               "sigma": 0.05, "kpts": [1, 1, 1], "ispin": None, "ldau_luj": None,
               "setups": None, "incar": None, "stress": True, "timeout": None}
    runtime_options = ("command", "launcher", "ranks", "threads", "pp_path", "timeout")

    def _pp_path(self):
        path = self.settings["pp_path"] or os.environ.get("VASP_PP_PATH")
        if not path or not Path(path).is_dir():
            raise LabelerError("labeler vasp: POTCAR folder not found: set option pp_path or "
                               "$VASP_PP_PATH to the folder holding potpaw_PBE/")
        return Path(path)

    def check(self, elements=()):
        _check_launcher(self)
        _which(self, self.settings["command"])
        root = self._pp_path()
        sub = {"PBE": "potpaw_PBE", "LDA": "potpaw"}.get(self.settings["xc"].upper(), "potpaw_PBE")
        setups = self.settings["setups"] or {}
        for el in elements:
            name = setups.get(el, el) if isinstance(setups, dict) else el
            if not (root / sub / name / "POTCAR").is_file() and \
                    not (root / sub / f"{el}{name}" / "POTCAR").is_file():
                raise LabelerError(f"labeler vasp: no POTCAR for {el} in {root / sub}")

    def build(self, directory):
        from ase.calculators.vasp import Vasp
        self.check()
        s = self.settings
        os.environ["VASP_PP_PATH"] = str(self._pp_path())
        os.environ["OMP_NUM_THREADS"] = str(int(s["threads"]))
        command = " ".join(_launch_prefix(self) + [s["command"]])
        kwargs = dict(directory=str(directory), command=command, xc=s["xc"], encut=s["encut"],
                      ediff=s["ediff"], ismear=s["ismear"], sigma=s["sigma"],
                      kpts=tuple(s["kpts"]), gamma=True, lwave=False, lcharg=False,
                      isym=0, nelm=200, prec="Accurate", lreal="Auto")
        if s["ispin"]:
            kwargs["ispin"] = int(s["ispin"])
        if s["ldau_luj"]:
            kwargs["ldau_luj"] = s["ldau_luj"]
        if s["setups"]:
            kwargs["setups"] = s["setups"]
        kwargs.update(s["incar"] or {})
        return Vasp(**kwargs)

    def after(self, calc):
        with contextlib.suppress(AttributeError):
            if calc.converged is False:
                raise LabelingError("vasp", "scf", "electronic SCF not converged (NELM)")


class EspressoLabeler(Labeler):
    """Quantum ESPRESSO pw.x through ASE; needs the program and pseudopotential files."""

    name = "espresso"
    summary = "Quantum ESPRESSO pw.x via ASE (needs pw.x and pseudopotentials)"
    options = {"command": "pw.x", "launcher": None, "ranks": 1, "threads": 1,
               "pseudo_dir": None, "pseudopotentials": None, "ecutwfc": 60.0,
               "ecutrho": 480.0, "kpts": None, "smearing": "fermi-dirac", "degauss": 0.005,
               "input_data": None, "stress": True, "timeout": None}
    runtime_options = ("command", "launcher", "ranks", "threads", "pseudo_dir", "timeout")

    def _pseudo_dir(self):
        folder = self.settings["pseudo_dir"] or os.environ.get("ESPRESSO_PSEUDO")
        if not folder or not Path(folder).is_dir():
            raise LabelerError("labeler espresso: pseudopotential folder not found: set "
                               "option pseudo_dir or $ESPRESSO_PSEUDO")
        return Path(folder)

    def check(self, elements=()):
        _check_launcher(self)
        _which(self, self.settings["command"])
        folder = self._pseudo_dir()
        pseudos = self.settings["pseudopotentials"] or {}
        if not isinstance(pseudos, dict):
            raise LabelerError("labeler espresso: pseudopotentials must map element -> file")
        for el in elements:
            if el not in pseudos:
                raise LabelerError(f"labeler espresso: no pseudopotential given for {el} "
                                   "(option pseudopotentials: {El: file.UPF})")
        for el, fname in pseudos.items():
            if not (folder / fname).is_file():
                raise LabelerError(f"labeler espresso: pseudopotential {folder / fname} "
                                   f"({el}) not found")

    def build(self, directory):
        from ase.calculators.espresso import Espresso, EspressoProfile
        self.check()
        s = self.settings
        os.environ["OMP_NUM_THREADS"] = str(int(s["threads"]))
        profile = EspressoProfile(command=" ".join(_launch_prefix(self) + [s["command"]]),
                                  pseudo_dir=str(self._pseudo_dir()))
        data = {"control": {"tprnfor": True, "tstress": bool(s["stress"])},
                "system": {"ecutwfc": s["ecutwfc"], "ecutrho": s["ecutrho"],
                           "occupations": "smearing", "smearing": s["smearing"],
                           "degauss": s["degauss"]}}
        for section, values in (s["input_data"] or {}).items():
            data.setdefault(section, {}).update(values)
        return Espresso(profile=profile, directory=str(directory),
                        pseudopotentials=dict(s["pseudopotentials"] or {}),
                        input_data=data, kpts=s["kpts"])

    def after(self, calc):
        out = Path(getattr(calc, "directory", ".")) / "espresso.pwo"
        if out.is_file() and "convergence NOT achieved" in out.read_text(errors="replace"):
            raise LabelingError("espresso", "scf", f"SCF not converged ({out})")


# ---------------------------------------------------------------------------------------
# Test and plug-in labelers
# ---------------------------------------------------------------------------------------

class EmtLabeler(Labeler):
    """ASE's EMT (tests only: Al Cu Ag Au Ni Pd Pt H C N O)."""

    name = "emt"
    summary = "ASE EMT (tests only)"
    options = {"stress": True, "timeout": None}
    runtime_options = ("timeout",)

    def check(self, elements=()):
        from ase.calculators.emt import parameters
        missing = sorted(set(elements) - set(parameters))
        if missing:
            raise LabelerError(f"labeler emt: no EMT parameters for {', '.join(missing)}")

    def build(self, directory):
        from ase.calculators.emt import EMT
        return EMT()


class PythonLabeler(Labeler):
    """Any ASE calculator from a factory ``module:function`` or ``file.py:function``,
    called with ``kwargs``."""

    name = "python"
    summary = "any ASE calculator: factory 'module:function' or 'file.py:function'"
    options = {"factory": None, "kwargs": None, "stress": True, "timeout": None}
    runtime_options = ("timeout",)

    def validate(self):
        f = self.settings["factory"]
        if not f or ":" not in str(f):
            raise LabelerError("labeler python: option factory must be 'module:function' or "
                               "'path/to/file.py:function'")
        if self.settings["kwargs"] is not None and not isinstance(self.settings["kwargs"], dict):
            raise LabelerError("labeler python: option kwargs must be a mapping")

    def _factory(self):
        target, _, func = str(self.settings["factory"]).rpartition(":")
        try:
            if target.endswith(".py"):
                path = Path(target).expanduser().resolve()
                if not path.is_file():
                    raise LabelerError(f"labeler python: factory file {path} not found")
                name = "hpcnnp_labeler_" + re.sub(r"\W", "_", str(path))
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(target)
        except HpcnnpError:
            raise
        except Exception as exc:
            raise LabelerError(f"labeler python: cannot import {target!r}: "
                               f"{type(exc).__name__}: {exc}") from None
        fn = getattr(module, func, None)
        if not callable(fn):
            raise LabelerError(f"labeler python: {target!r} has no callable {func!r}")
        return fn

    def check(self, elements=()):
        self._factory()

    def build(self, directory):
        return self._factory()(**(self.settings["kwargs"] or {}))


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------

#: labeler name -> class; the one place a new reference method is added
LABELERS = {cls.name: cls for cls in (ChgnetLabeler, XtbLabeler, Cp2kLabeler, VaspLabeler,
                                      EspressoLabeler, EmtLabeler, PythonLabeler)}

#: the labeler used when a campaign does not name one
DEFAULT_LABELER = "chgnet"


def make_labeler(name, **options):
    """The :class:`Labeler` (settings checked, nothing started) of *name*.

    Raises
    ------
    HpcnnpError
        Unknown name (the message lists the known labelers) or bad options.
    """
    key = str(name).strip().lower()
    if key not in LABELERS:
        raise LabelerError(f"unknown labeler {name!r}; known labelers: "
                           + ", ".join(f"{k} ({c.summary})" for k, c in LABELERS.items()))
    return LABELERS[key](**options)


def labeler_settings(name, **options):
    """Settings (defaults filled in) of a labeler, without starting anything."""
    return dict(make_labeler(name, **options).settings)


def get_labeler(name, directory=None, **options):
    """An ASE calculator for the labeler *name* (a :class:`LabelerCalculator`).

    Parameters
    ----------
    name : str
        Key of :data:`LABELERS` (``chgnet``, ``xtb``, ``cp2k``, ``vasp``,
        ``espresso``, ``emt``, ``python``).
    directory : str or path, optional
        Working folder of file-based programs (default: a temporary folder).
    **options
        The labeler's options (see the classes).

    Raises
    ------
    HpcnnpError
        Unknown labeler (lists the known ones), unknown option, missing program.
    """
    labeler = make_labeler(name, **options)
    labeler.check()
    return labeler.calculator(directory=directory)


def single_point(atoms, calc):
    """Energy (force-consistent), forces and stress (or None) of *atoms* with *calc*.

    Returns
    -------
    dict
        ``energy`` (eV), ``forces`` (N, 3) eV/Å, ``stress`` (6,) eV/Å^3 Voigt
        (ASE's sign) or None.
    """
    work = atoms.copy()
    work.calc = calc
    energy = float(work.get_potential_energy(force_consistent=True)
                   if "free_energy" in calc.implemented_properties
                   else work.get_potential_energy())
    forces = np.array(work.get_forces(), dtype=float)
    stress = None
    if "stress" in calc.results:
        stress = np.array(calc.results["stress"], dtype=float)
    return {"energy": energy, "forces": forces, "stress": stress}
