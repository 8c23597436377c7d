"""Kohn-Sham DFT with CP2K's Quickstep (GPW): the input is written here and run through
ASE's ``cp2k_shell`` calculator (see :class:`Cp2kLabeler`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import shutil
from pathlib import Path

from ase.calculators.calculator import Calculator, all_changes

from .base import (Labeler, LabelerError, LabelingError, _check_launcher, _launch_prefix,
                   _positive, _which)

__all__ = ["Cp2kLabeler", "CP2K_DATA_DIRS", "CP2K_BASIS_FILES", "CP2K_POTENTIAL_FILE",
           "CP2K_SHELLS"]


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
        lines += ["    &MGRID", f"      CUTOFF {s['cutoff']}",
                  f"      REL_CUTOFF {s['rel_cutoff']}",
                  f"      NGRIDS {int(s['ngrids'])}", "    &END MGRID",
                  "    &QS", f"      EPS_DEFAULT {s['eps_default']:.1E}",
                  f"      EXTRAPOLATION {s['extrapolation']}",
                  f"      EXTRAPOLATION_ORDER {int(s['extrapolation_order'])}",
                  "    &END QS",
                  "    &SCF", f"      EPS_SCF {s['eps_scf']:.1E}",
                  f"      MAX_SCF {int(s['max_scf'])}"]
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
            self._calc = CP2K(command=self.labeler.command(),
                              inp=self.labeler.input_text(self.atoms),
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
