"""VASP through ASE's calculator, for users who have the program and its POTCARs.
"""

from __future__ import annotations

import contextlib
import os

from .base import (Labeler, LabelerError, LabelingError, _check_launcher, _launch_prefix, _which,
                   _folder_setting)

__all__ = ["VaspLabeler"]


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
        return _folder_setting(self, "pp_path", "VASP_PP_PATH", "POTCAR",
                               hint=" to the folder holding potpaw_PBE/")

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
