"""ASE's EMT, for tests only (Al Cu Ag Au Ni Pd Pt H C N O).
"""

from __future__ import annotations

from .base import Labeler, LabelerError

__all__ = ["EmtLabeler"]


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
