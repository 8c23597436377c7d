"""Property quality factor Q and the property calculators (elastic constants of EMT Cu)."""
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from hpcnnp.validation.quality import (EV_A3_GPA, PropertyRow, QualityTable,
                                       compute_properties, cubic_averages,
                                       elastic_constants, quality_factor, relax,
                                       vacancy_formation_energy)


def test_quality_factor_ten_percent():
    ref = np.array([13.0, 180.0, 110.0, 60.0, 4.2, 0.9])
    assert quality_factor(1.1 * ref, ref) == pytest.approx(0.1)
    signs = np.array([1, -1, 1, -1, -1, 1])
    assert quality_factor(ref * (1 + 0.1 * signs), ref) == pytest.approx(0.1)
    # p_ref = 0 is left out; NaN everywhere gives NaN
    assert quality_factor([1.1, 5.0], [1.0, 0.0]) == pytest.approx(0.1)
    assert np.isnan(quality_factor([np.nan], [1.0]))
    table = QualityTable([PropertyRow("a", "Å", 1.1 * 13.0, 13.0),
                          PropertyRow("C11", "GPa", 0.9 * 180.0, 180.0)])
    assert table.Q == pytest.approx(0.1)
    assert "+10.0 %" in table.markdown() and "-10.0 %" in table.markdown()
    assert table.csv().splitlines()[-1] == "Q,,,,0.1"


def _energy_fd(atoms, eps):
    a = atoms.copy()
    a.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
    a.calc = EMT()
    return a.get_potential_energy()


def test_elastic_constants_emt_cu_match_energy_finite_differences():
    cu, ok = relax(bulk("Cu", "fcc", a=3.6, cubic=True), EMT(), fmax=1e-6, steps=100)
    assert ok
    C = elastic_constants(cu, EMT(), delta=0.005)
    c = cubic_averages(C)
    # independent check: second derivatives of the energy, E = E0 + V/2 eps.C.eps
    V, h = cu.get_volume(), 1e-3
    e0 = _energy_fd(cu, np.zeros((3, 3)))

    def d2(eps):
        return (_energy_fd(cu, eps) - 2 * e0 + _energy_fd(cu, -eps)) / h ** 2 / V * EV_A3_GPA

    c11 = d2(np.diag([h, 0, 0]))
    c12 = 0.5 * d2(np.diag([h, h, 0])) - c11         # = C11 + C12 for the biaxial strain
    shear = np.zeros((3, 3))
    shear[1, 2] = shear[2, 1] = h / 2                # engineering shear strain h
    c44 = d2(shear)
    assert c["C11"] == pytest.approx(c11, abs=0.5)
    assert c["C12"] == pytest.approx(c12, abs=0.5)
    assert c["C44"] == pytest.approx(c44, abs=0.5)
    # EMT copper: C11 ~ 173, C12 ~ 115, C44 ~ 90 GPa; cubic symmetry of the tensor
    assert (c["C11"], c["C12"], c["C44"]) == pytest.approx((172.6, 115.4, 89.9), abs=1.0)
    assert np.allclose(C, C.T, atol=0.05)
    assert np.abs(C[:3, 3:]).max() < 0.05


def test_properties_emt_cu_lattice_and_vacancy():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    values, det = compute_properties(cu, EMT(), properties=("lattice", "vacancy"),
                                     fmax=0.005, vacancy_element="Cu", mu="removal")
    assert values["a"][0] == pytest.approx(2 * 3.5898, abs=2e-3)     # 2x2x2 cell
    ef = values["E_vac(Cu)"][0]
    # with mu = E_bulk per atom the EMT vacancy energy is ~1.1-1.3 eV
    mu_bulk = det["relaxed"].get_potential_energy() / len(det["relaxed"])
    assert 0.8 < ef + mu_bulk < 1.6
    with pytest.raises(Exception, match="no Zr atom"):
        vacancy_formation_energy(det["relaxed"], EMT(), "Zr")
