"""Quantum ESPRESSO ``pw.x`` through ASE's calculator, for users who have the program
and its pseudopotentials.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import (Labeler, LabelerError, LabelingError, _check_launcher, _launch_prefix, _which,
                   _folder_setting)

__all__ = ["EspressoLabeler"]


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
        return _folder_setting(self, "pseudo_dir", "ESPRESSO_PSEUDO", "pseudopotential")

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
