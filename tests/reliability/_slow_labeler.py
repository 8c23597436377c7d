"""Slow ASE calculators for the ``python`` labeler of the process tests: EMT (Cu) and a
weak Lennard-Jones (any element, e.g. LiCoO2) that sleep 0.2 s per call, so that a
campaign keeps its workers busy for minutes.

Loaded by file path (also inside Parsl workers): must not import the tests.
"""

import time

from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones


class _SlowEMT(EMT):
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        time.sleep(0.2)
        super().calculate(atoms, properties, system_changes)


def slow_emt():
    return _SlowEMT()


class _SlowLJ(LennardJones):
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        time.sleep(0.2)
        super().calculate(atoms, properties, system_changes)


def slow_lj():
    return _SlowLJ(sigma=1.5, epsilon=0.01, rc=4.0)
