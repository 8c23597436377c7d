"""Faulty ASE calculators for the ``python`` labeler in the sampling tests.

Loaded by file path (``labeler: {name: python, factory: ".../_sampling_faulty.py:nan_emt"}``),
also inside Parsl workers, so this file must not import the tests.
"""

import numpy as np
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT


class _NaNEMT(EMT):
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results["energy"] = float("nan")
        self.results["forces"] = np.full((len(self.atoms), 3), np.nan)


class _RaisingEMT(EMT):
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        raise RuntimeError("SCF not converged in 50 cycles (injected failure)")


class _FlakyEMT(EMT):
    """Raises on call number ``fail_at`` (1-based) and works otherwise."""

    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("node failure (injected)")
        super().calculate(atoms, properties, system_changes)


def nan_emt():
    return _NaNEMT()


def raising_emt():
    return _RaisingEMT()


def flaky_emt(fail_at=5):
    return _FlakyEMT(fail_at)
