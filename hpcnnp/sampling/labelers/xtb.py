"""GFN1-xTB through tblite's ASE calculator.

C. Bannwarth et al., WIREs Comput. Mol. Sci. 11, e1493 (2021), doi:10.1002/wcms.1493.
Defaults that converge on Co-doped LLZO: electronic temperature 3000 K, mixer damping
0.2, 300 SCF iterations; tblite's periodic code is Γ-point only.
"""

from __future__ import annotations

import contextlib
import os

from .base import Labeler, LabelerError, _positive, _require_package

__all__ = ["XtbLabeler"]


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
        _require_package(self, "tblite", "pip install tblite")

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
