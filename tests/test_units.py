"""Units and element constants: values from the SI definitions, one home for each."""

import re
from pathlib import Path

import numpy as np
import pytest

from hpcnnp import units as u
from hpcnnp.errors import HpcnnpError

# CODATA 2018 / SI 2019, written out independently of ASE's tables
E = 1.602176634e-19             # C, exact
K_B = 1.380649e-23              # J/K, exact
N_A = 6.02214076e23             # 1/mol, exact
AMU = 1.66053906660e-27         # kg
EPS0 = 8.8541878128e-12         # F/m
BOHR = 0.529177210903           # Å
HARTREE = 27.211386245988       # eV


def test_constants_from_their_definitions():
    assert u.CODATA == "2018"
    assert u.KB_EV == pytest.approx(K_B / E, rel=1e-12)
    assert u.EV_A3_GPA == pytest.approx(E / 1e-30 / 1e9, rel=1e-12)       # 160.2176634
    assert u.EV_A2_JM2 == pytest.approx(E / 1e-20, rel=1e-12)             # 16.02176634
    assert u.AMU_G_CM3 == pytest.approx(AMU * 1e3 / 1e-24, rel=1e-10)     # 1.6605390666
    assert u.A2_PER_FS_TO_CM2_PER_S == pytest.approx(1e-16 / 1e-15, rel=1e-15)
    assert u.BOHR == pytest.approx(BOHR, rel=1e-10)
    assert u.HARTREE == pytest.approx(HARTREE, rel=1e-10)
    assert u.COULOMB == pytest.approx(E / (4 * np.pi * EPS0 * 1e-10), rel=1e-10)
    assert u.EV_PER_KJ_MOL == pytest.approx(1e3 / N_A / E, rel=1e-12)
    assert u.FS_PER_PS == 1e3 and u.FS_PER_NS == 1e6 and u.SECONDS_PER_DAY == 86400.0


def test_physical_sanity():
    # k_B T at room temperature is ~25.7 meV; 1 eV ~ 11604.5 K
    assert u.KB_EV * 298.15 == pytest.approx(0.025693, abs=1e-6)
    assert 1.0 / u.KB_EV == pytest.approx(11604.518, abs=1e-3)
    # a Li+ O2- pair at 2 Å: Coulomb energy -2 e^2 / (4 pi eps0 r) ~ -14.4 eV
    assert -2 * u.COULOMB / 2.0 == pytest.approx(-14.3996, abs=1e-4)
    # 1 eV per formula unit ~ 96.485 kJ/mol (Faraday constant / 1000)
    assert 1.0 / u.EV_PER_KJ_MOL == pytest.approx(96.48533212, rel=1e-9)


def test_elements():
    assert u.atomic_number("Li") == 3 and u.atomic_number("Co") == 27
    assert u.atomic_mass("Co") == pytest.approx(58.933194)      # IUPAC 2016
    assert u.atomic_mass(57) == u.atomic_mass("La") == pytest.approx(138.90547)
    np.testing.assert_allclose(u.atomic_masses(["Li", 8, np.int64(40)]),
                               [6.94, 15.999, 91.224])
    assert u.atomic_masses([]).shape == (0,)
    assert u.CHEMICAL_SYMBOLS[1] == "H" and u.CHEMICAL_SYMBOLS[102] == "No"
    for bad in ("Xx", "li", "", None, "X"):
        with pytest.raises(u.ElementError, match="chemical element|placeholder"):
            u.atomic_number(bad)
    with pytest.raises(HpcnnpError, match="no atomic number 0"):
        u.atomic_mass(0)
    with pytest.raises(KeyError):                   # also a KeyError, as ASE's table
        u.atomic_mass("Xx")
    assert str(u.ElementError("'Xx' is not")) == "'Xx' is not"


def test_llzo_lco_charges_and_order():
    assert set(u.FORMAL_CHARGES) == set(u.ELEMENT_ORDER) == {"Li", "La", "Zr", "Co", "O"}
    # Li7La3Zr2O12 and LiCoO2 are neutral with these oxidation states
    q = u.FORMAL_CHARGES
    assert 7 * q["Li"] + 3 * q["La"] + 2 * q["Zr"] + 12 * q["O"] == 0
    assert q["Li"] + q["Co"] + 2 * q["O"] == 0


def test_one_home():
    """The constants are defined here only; the old homes re-export the same objects."""
    from hpcnnp.analysis import density, structure
    from hpcnnp.io.n2p2 import N2P2_ELEMENTS
    from hpcnnp.structures import _common
    from hpcnnp.validation import quality, transition

    assert structure.KB_EV is u.KB_EV
    assert quality.EV_A3_GPA is u.EV_A3_GPA and transition.EV_A3_GPA is u.EV_A3_GPA
    assert density.BOHR is u.BOHR and _common.FORMAL_CHARGES is u.FORMAL_CHARGES
    assert N2P2_ELEMENTS == u.CHEMICAL_SYMBOLS[1:103]
    # no numeric copy of a constant of this module elsewhere in the package
    root = Path(u.__file__).resolve().parents[1]
    pattern = re.compile(r"8\.61733|160\.2176|16\.02176|1\.660539|0\.5291772|27\.21138"
                         r"|14\.39964|96\.4853|= *\{\s*\"Li\": *1, *\"La\": *3")
    hits = []
    for folder in ("hpcnnp", "analysis"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "units.py":
                continue
            for k, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and not line.lstrip().startswith("#"):
                    hits.append(f"{path.relative_to(root)}:{k}: {line.strip()}")
    assert hits == []
