"""Units and element constants: the one place for conversions.

hpcnnp works in the units of n2p2 and ASE: lengths in Å, energies in eV, forces in
eV/Å, time in fs, temperatures in K, masses in amu, charges in e.  Numbers leave
these units only at the edges -- reports (GPa, J/m², cm²/s, g/cm³), LAMMPS metal
units inside :mod:`hpcnnp.md` (ps, bar), reference codes (Hartree, Bohr) -- and the
factors for that live here, below every stage, so that no stage writes its own.

Physical constants are CODATA 2018 (the SI redefinition of 2019 made e, k_B, h and
N_A exact), taken from ASE's tables (``ase.units.create_units("2018")``).  ASE's own
``ase.units`` module defaults to CODATA 2014 and defines ASE's *internal* units;
keep using it where a number goes into or comes out of ASE's dynamics
(``timestep * ase.units.fs``, velocities of ``ase.Atoms``).  The two differ by
~1e-7 relative (k_B) or less.

Element data come from ASE's tables (``ase.data``: symbols, atomic numbers, IUPAC
2016 standard atomic weights); :func:`atomic_number` and :func:`atomic_mass` add
an error that names the symbol.  The formal charges and the formula order of the
LLZO/LCO system live here too.

>>> from hpcnnp.units import KB_EV, EV_A3_GPA, atomic_mass
>>> round(1.0 / (KB_EV * 300.0), 3)          # 1/(k_B T) at 300 K, 1/eV
38.682
>>> round(0.01 * EV_A3_GPA, 4)               # 0.01 eV/Å³ in GPa
1.6022
>>> atomic_mass("Li")
6.94
"""

from __future__ import annotations

import numpy as np
from ase.data import atomic_masses as _ASE_MASSES
from ase.data import atomic_numbers as _ASE_NUMBERS
from ase.data import chemical_symbols as _ASE_SYMBOLS
from ase.units import create_units

from hpcnnp.errors import HpcnnpError

__all__ = [
    "CODATA", "KB_EV", "EV_A3_GPA", "EV_A2_JM2", "AMU_G_CM3", "A2_PER_FS_TO_CM2_PER_S",
    "BOHR", "HARTREE", "COULOMB", "EV_PER_KJ_MOL", "FS_PER_PS", "FS_PER_NS",
    "SECONDS_PER_DAY", "CHEMICAL_SYMBOLS", "FORMAL_CHARGES", "ELEMENT_ORDER",
    "ElementError", "atomic_number", "atomic_mass", "atomic_masses",
]

#: CODATA release of the physical constants below.
CODATA = "2018"

_C = create_units(CODATA)

# ---------------------------------------------------------------------------------------
# Physical constants and conversion factors
# ---------------------------------------------------------------------------------------

#: Boltzmann constant, eV/K.
KB_EV = float(_C["kB"])

#: 1 eV/Å³ in GPa (stress, pressure, elastic constants).
EV_A3_GPA = float(1.0 / _C["GPa"])

#: 1 eV/Å² in J/m² (surface and interface energies).
EV_A2_JM2 = float(_C["_e"] * 1e20)

#: 1 amu/Å³ in g/cm³ (mass densities): 1 amu in g over 1 Å³ = 1e-24 cm³.
AMU_G_CM3 = float(_C["_amu"] * 1e3 / 1e-24)

#: 1 Å²/fs in cm²/s (diffusion coefficients): 1e-16 cm² / 1e-15 s.
A2_PER_FS_TO_CM2_PER_S = 0.1

#: Bohr radius, Å.
BOHR = float(_C["Bohr"])

#: Hartree energy, eV.
HARTREE = float(_C["Hartree"])

#: Coulomb constant e²/(4π ε0), eV Å (= Hartree Bohr).
COULOMB = HARTREE * BOHR

#: 1 kJ/mol in eV (per particle).
EV_PER_KJ_MOL = float(_C["kJ"] / _C["mol"])

#: fs in a ps (LAMMPS metal time).
FS_PER_PS = 1.0e3

#: fs in a ns (simulated-time totals, ns/day).
FS_PER_NS = 1.0e6

#: Seconds in a day (ns/day throughputs).
SECONDS_PER_DAY = 86400.0

# ---------------------------------------------------------------------------------------
# Elements
# ---------------------------------------------------------------------------------------

#: Element symbols by atomic number (index 0 is the placeholder ``"X"``).
CHEMICAL_SYMBOLS = tuple(_ASE_SYMBOLS)

#: Formal oxidation states of the LLZO/LCO elements, used unless a builder states
#: otherwise (per-atom values are stored as ``atoms.get_initial_charges()``), e.
FORMAL_CHARGES = {"Li": 1, "La": 3, "Zr": 4, "Co": 3, "O": -2}

#: Order of the elements in formulas and tables (Li7La3Zr2O12, LiCoO2).
ELEMENT_ORDER = ("Li", "La", "Zr", "Co", "O")


class ElementError(HpcnnpError, KeyError):
    """A symbol that is not a chemical element."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def atomic_number(symbol):
    """Atomic number of an element symbol (``"Co"`` -> 27).

    Raises
    ------
    ElementError
        Unknown symbol (the message names it).
    """
    try:
        z = _ASE_NUMBERS[symbol]
    except (KeyError, TypeError):
        raise ElementError(f"{symbol!r} is not a chemical element symbol") from None
    if z == 0:
        raise ElementError(f"{symbol!r} is the placeholder, not a chemical element")
    return z


def atomic_mass(element):
    """Standard atomic weight (IUPAC 2016, ASE's table), amu.

    Parameters
    ----------
    element : str or int
        Symbol (``"La"``) or atomic number (57).
    """
    z = int(element) if isinstance(element, (int, np.integer)) else atomic_number(element)
    if not 0 < z < len(_ASE_MASSES):
        raise ElementError(f"no atomic number {element!r}")
    return float(_ASE_MASSES[z])


def atomic_masses(elements):
    """Standard atomic weights (amu) of symbols or atomic numbers, as a float array.

    Parameters
    ----------
    elements : iterable of str or int

    Returns
    -------
    (n,) float64 array, amu
    """
    return np.array([atomic_mass(e) for e in elements], dtype=np.float64)
