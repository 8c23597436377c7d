"""The labeler base class, its errors and the checked ASE calculator it builds.

Every reference method of :data:`hpcnnp.sampling.labelers.LABELERS` is a
:class:`Labeler` subclass (one module each, like ASE's calculators): it declares
its ``options`` with defaults, checks that its program and data are present and
builds an ASE calculator, which :class:`LabelerCalculator` wraps so that every
result is checked and every failure becomes a :class:`LabelingError`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shlex
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from hpcnnp.errors import HpcnnpError

__all__ = ["LabelerError", "LabelingError", "Labeler", "LabelerCalculator"]


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


def _as_bool(value):
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(value)
    return bool(value)


def _as_int(value):
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def _as_float(value):
    if isinstance(value, bool):
        raise ValueError(value)
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(value)
    return out


def _coerce(name, key, value, default):
    """*value* converted to the type of *default* (bool, int, float; others as given)."""
    if value is None or default is None:
        return value
    convert = _as_bool if isinstance(default, bool) else _as_int \
        if isinstance(default, int) else _as_float if isinstance(default, float) else None
    if convert is None:
        return value
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise LabelerError(f"labeler {name}: option {key} must be a "
                           f"{type(default).__name__}, got {value!r}") from None


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


def _require_package(labeler, module, install):
    """LabelerError unless the Python package ``module`` is installed (``install``: how
    to install it)."""
    if importlib.util.find_spec(module) is None:
        raise LabelerError(f"labeler {labeler.name}: the {module} package is not installed "
                           f"({install})")


def _folder_setting(labeler, key, env, what, hint=""):
    """The folder given by option ``key``, else by the environment variable ``env``.

    Raises
    ------
    LabelerError
        Neither names an existing folder (``what``: the folder's role, e.g.
        "pseudopotential"; ``hint`` is appended to the message).
    """
    folder = labeler.settings[key] or os.environ.get(env)
    if not folder or not Path(folder).is_dir():
        raise LabelerError(f"labeler {labeler.name}: {what} folder not found: set option "
                           f"{key} or ${env}{hint}")
    return Path(folder)


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
        inner = self.inner
        want_stress = (bool(self.labeler.settings.get("stress", True))
                       and "stress" in getattr(inner, "implemented_properties", ())
                       and bool(np.all(atoms.pbc)) and atoms.cell.rank == 3)
        if "stress" in properties and not want_stress:
            raise LabelingError(self.labeler.name, "crash", "stress requested but this "
                                "labeler does not compute it here (option stress off, labeler "
                                "without stress, or a cell that is not periodic in 3 "
                                "directions)")
        work = atoms.copy()
        work.calc = None
        raw = self._evaluate(inner, work, want_stress)
        self.labeler.after(inner)
        self.results = self._checked(raw, atoms)
        self.n_calls += 1

    def _evaluate(self, inner, work, want_stress):
        """Energy, free energy, forces, stress (or None) of *work* with the program,
        under the labeler's timeout; failures as :class:`LabelingError`."""
        name = self.labeler.name
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
        try:
            energy = inner.get_potential_energy(work)
            free = inner.results.get("free_energy", energy)
            forces = inner.get_forces(work)
            stress = inner.get_stress(work) if want_stress else None
        except Exception as exc:
            if fired.is_set():
                raise LabelingError(name, "timeout", f"no result within {timeout} s") from exc
            if isinstance(exc, HpcnnpError):
                raise
            reason = "scf" if "converge" in str(exc).lower() else "crash"
            raise LabelingError(name, reason, f"{type(exc).__name__}: {exc}") from exc
        finally:
            if timer is not None:
                timer.cancel()
        if fired.is_set():
            raise LabelingError(name, "timeout", f"no result within {timeout} s")
        return {"energy": energy, "free_energy": free, "forces": forces, "stress": stress}

    def _checked(self, raw, atoms):
        """The results with their shapes checked and every number finite."""
        name = self.labeler.name
        shapes = {"energy": (), "free_energy": (), "forces": (len(atoms), 3), "stress": (6,)}
        results = {}
        for key, shape in shapes.items():
            if raw[key] is None:
                continue
            arr = np.array(raw[key], dtype=float)
            if arr.shape == (3, 3) and key == "stress":
                arr = arr.ravel()[[0, 4, 8, 5, 2, 1]]
            if arr.shape != shape:
                raise LabelingError(name, "crash", f"{key} has shape {arr.shape}, "
                                    f"expected {shape}")
            if not np.all(np.isfinite(arr)):
                bad = "NaN" if np.any(np.isnan(arr)) else "infinite"
                raise LabelingError(name, "nan", f"{bad} {key} for {atoms.get_chemical_formula()}")
            results[key] = float(arr) if shape == () else arr
        return results

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
