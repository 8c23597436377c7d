"""ASE calculator for hpcnnp potentials.

>>> from hpcnnp import HDNNPCalculator                   # doctest: +SKIP
>>> atoms.calc = HDNNPCalculator("pot_dir")
>>> atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Units are the potential's (Å and eV for the LLZO/LCO potentials; n2p2's
example H2O potential is in Bohr and Hartree — convert positions yourself or
use a potential trained in ASE units with ASE's MD drivers).
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator, all_changes

from hpcnnp.potential import Potential


class HDNNPCalculator(Calculator):
    """Energy, per-atom energies, forces and stress from an HDNNP.

    Parameters
    ----------
    potential : str, Path or Potential
        An n2p2 potential folder or a loaded :class:`~hpcnnp.potential.Potential`.
    warn_extrapolation : bool
        Print n2p2-style extrapolation warnings (SF values outside the range
        of the training data) to stderr; they are always counted in
        ``calc.results["extrapolation_warnings"]``.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    default_parameters = {"warn_extrapolation": False}

    def __init__(self, potential, warn_extrapolation=False, **kwargs):
        super().__init__(warn_extrapolation=warn_extrapolation, **kwargs)
        self.potential = potential if isinstance(potential, Potential) \
            else Potential.from_n2p2(potential)
        self.n_extrapolation_warnings = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties and self.atoms.pbc.all()
        res = self.potential.compute(self.atoms, forces=True, stress=want_stress)
        self.results = {
            "energy": res.energy,
            "free_energy": res.energy,
            "energies": res.energies.copy(),
            "forces": res.forces.copy(),
            "extrapolation_warnings": res.n_warnings,
        }
        if res.stress is not None:
            self.results["stress"] = res.stress.copy()
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError
            raise PropertyNotImplementedError("stress needs a periodic cell (pbc=True)")
        self.n_extrapolation_warnings += res.n_warnings
        if self.parameters.warn_extrapolation and res.warnings:
            import sys
            for w in res.warnings:
                print(w.n2p2_line(), file=sys.stderr)
