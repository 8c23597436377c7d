"""Labelers: the table, option checking, failure handling, CHGNet/xtb/CP2K single points.

CP2K: a small Co-containing cell (LiCoO2 unit in a 5.5 Å box); the forces are
checked against the energy along a random displacement of an O atom: the
trapezoid rule of the forces at the two end points equals the energy difference
to O(h^2) (a central difference with two SCF runs instead of three).
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from hpcnnp.errors import HpcnnpError
from hpcnnp.sampling import labelers as lb

FAULTY = Path(__file__).with_name("_sampling_faulty.py")
HAVE_CHGNET = importlib.util.find_spec("chgnet") is not None
HAVE_TBLITE = importlib.util.find_spec("tblite") is not None


def _cp2k_ready():
    try:
        lb.make_labeler("cp2k").check(["Li", "Co", "O", "La", "Zr"])
        return None
    except HpcnnpError as exc:
        return str(exc)


CP2K_MISSING = _cp2k_ready()


def lco_unit():
    return Atoms("LiCoO2", positions=[[2.3, 2.3, 0.1], [0.0, 0.05, 0.1], [1.95, 0.1, 0.2],
                                      [-1.9, 0.2, -0.4]], cell=[5.5, 5.5, 5.5], pbc=True)


def test_table_lists_the_labelers():
    for name in ("chgnet", "xtb", "cp2k", "vasp", "espresso", "emt", "python"):
        assert name in lb.LABELERS
        assert lb.LABELERS[name].summary


def test_unknown_labeler_lists_known_ones():
    with pytest.raises(HpcnnpError) as exc:
        lb.get_labeler("dftb+")
    msg = str(exc.value)
    assert "unknown labeler 'dftb+'" in msg
    for name in ("chgnet", "xtb", "cp2k", "vasp", "espresso"):
        assert name in msg


def test_options_are_checked_and_defaults_recorded():
    with pytest.raises(HpcnnpError, match="unknown option.*cutof.*known options"):
        lb.make_labeler("cp2k", cutof=300)
    with pytest.raises(HpcnnpError, match="mixer_damping must be a float"):
        lb.make_labeler("xtb", mixer_damping="strong")
    with pytest.raises(HpcnnpError, match="scf must be 'ot' or 'smearing'"):
        lb.make_labeler("cp2k", scf="davidson")
    xtb = lb.make_labeler("xtb")
    assert xtb.settings == {"name": "xtb", "method": "GFN1-xTB",
                            "electronic_temperature": 3000.0, "mixer_damping": 0.2,
                            "max_iterations": 300, "accuracy": 1.0, "threads": 1,
                            "stress": True, "timeout": None, "kpoints": "gamma"}
    # runtime options do not change the labels (and campaign task hashes)
    a = lb.make_labeler("cp2k", ranks=4, launcher="mpirun -np {ranks}").label_settings()
    b = lb.make_labeler("cp2k").label_settings()
    assert a == b and "cutoff" in a


def test_vasp_and_espresso_need_their_programs(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HpcnnpError, match="vasp_std.*not found"):
        lb.get_labeler("vasp")
    with pytest.raises(HpcnnpError, match="pw.x.*not found"):
        lb.get_labeler("espresso", pseudopotentials={"Li": "Li.upf"})


def test_emt_results_and_nan_and_exceptions_become_labeling_errors():
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=1)
    calc = lb.get_labeler("emt")
    res = lb.single_point(atoms, calc)
    assert res["forces"].shape == (4, 3) and res["stress"].shape == (6,)
    assert np.isfinite(res["energy"])
    nan = lb.get_labeler("python", factory=f"{FAULTY}:nan_emt")
    with pytest.raises(lb.LabelingError) as exc:
        lb.single_point(atoms, nan)
    assert exc.value.reason == "nan" and "NaN energy" in str(exc.value)
    bad = lb.get_labeler("python", factory=f"{FAULTY}:raising_emt")
    with pytest.raises(lb.LabelingError) as exc:
        lb.single_point(atoms, bad)
    assert exc.value.reason == "scf" and "injected" in str(exc.value)
    with pytest.raises(HpcnnpError, match="no callable 'nope'"):
        lb.get_labeler("python", factory=f"{FAULTY}:nope")


@pytest.mark.skipif(not HAVE_CHGNET, reason="chgnet is not installed (pip install chgnet)")
def test_chgnet_labeler_equals_chgnet_itself():
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from hpcnnp import structures as st
    atoms = st.lco()
    atoms.rattle(0.05, seed=2)
    res = lb.single_point(atoms, lb.get_labeler("chgnet"))
    ref = atoms.copy()
    ref.calc = CHGNetCalculator(model=CHGNet.load(verbose=False), use_device="cpu")
    assert res["energy"] == pytest.approx(ref.get_potential_energy(), abs=1e-5)
    np.testing.assert_allclose(res["forces"], ref.get_forces(), atol=1e-5)
    np.testing.assert_allclose(res["stress"], ref.get_stress(), atol=1e-6)


@pytest.mark.skipif(not HAVE_TBLITE, reason="tblite is not installed (pip install tblite)")
def test_xtb_single_point_on_co_containing_cell():
    from hpcnnp import structures as st
    atoms = st.lco()
    atoms.rattle(0.05, seed=3)
    calc = lb.get_labeler("xtb")
    res = lb.single_point(atoms, calc)
    assert np.isfinite(res["energy"]) and np.all(np.isfinite(res["forces"]))
    assert np.abs(res["forces"].sum(axis=0)).max() < 1e-6     # momentum conservation
    assert calc.settings["electronic_temperature"] == 3000.0
    # an SCF that cannot converge is a LabelingError, not a label
    with pytest.raises(lb.LabelingError, match="not converged"):
        lb.single_point(atoms, lb.get_labeler("xtb", max_iterations=2))


@pytest.mark.skipif(CP2K_MISSING is not None, reason=f"cp2k not usable: {CP2K_MISSING}")
def test_cp2k_input_spin_and_basis_files():
    lab = lb.make_labeler("cp2k")
    atoms = Atoms("LaCoO3", positions=np.random.default_rng(0).random((5, 3)) * 4,
                  cell=[6, 6, 6], pbc=True)
    text = lab.input_text(atoms)
    assert "BASIS_MOLOPT_UCL" in text and "BASIS_MOLOPT\n" in text
    assert "POTENTIAL GTH-PBE-q11" in text and "POTENTIAL GTH-PBE-q17" in text
    assert "DZVP-MOLOPT-SR-GTH" in text and "EXTRAPOLATION ASPC" in text
    assert "&OT" in text and "UKS" not in text        # 11 + 17 + 18 = 46 electrons
    odd = Atoms("CoO", positions=[[0, 0, 0], [1.7, 0, 0]], cell=[6, 6, 6], pbc=True)
    assert lab.spin(odd) == (True, 2, 23)
    assert "UKS" in lab.input_text(odd) and "MULTIPLICITY 2" in lab.input_text(odd)
    smear = lb.make_labeler("cp2k", scf="smearing").input_text(odd)
    assert "&SMEAR ON" in smear and "ADDED_MOS" in smear and "&OT" not in smear


@pytest.mark.skipif(CP2K_MISSING is not None, reason=f"cp2k not usable: {CP2K_MISSING}")
def test_cp2k_unconverged_scf_is_a_labeling_error(tmp_path):
    calc = lb.get_labeler("cp2k", directory=tmp_path, basis="SZV-MOLOPT-SR-GTH", cutoff=150,
                          scf="smearing", max_scf=3, stress=False)
    try:
        with pytest.raises(lb.LabelingError, match="SCF not converged") as exc:
            lb.single_point(lco_unit(), calc)
        assert exc.value.reason == "scf"
    finally:
        calc.close()


@pytest.mark.skipif(CP2K_MISSING is not None, reason=f"cp2k not usable: {CP2K_MISSING}")
def test_cp2k_forces_match_energy_differences(tmp_path):
    # light settings for a test (SZV, 300 Ry); the labeler's defaults are DZVP/400 Ry
    calc = lb.get_labeler("cp2k", directory=tmp_path, basis="SZV-MOLOPT-SR-GTH",
                          cutoff=300, rel_cutoff=50, scf="smearing", eps_scf=1e-7,
                          mixing_alpha=0.4, added_mos=4, threads=1, stress=False)
    try:
        atoms = lco_unit()
        d = np.zeros_like(atoms.positions)        # move one O atom along a random unit vector
        d[2] = np.random.default_rng(4).normal(size=3)
        d /= np.linalg.norm(d)
        h = 0.004                                  # Å; trapezoid error ~ h^2 E''' / 3
        ends = []
        for sign in (1, -1):
            a = atoms.copy()
            a.positions += sign * h * d
            ends.append(lb.single_point(a, calc))
        slope = (ends[0]["energy"] - ends[1]["energy"]) / (2 * h)          # dE/ds, eV/Å
        force = -0.5 * np.sum((ends[0]["forces"] + ends[1]["forces"]) * d)
        assert abs(slope) > 0.2
        assert force == pytest.approx(slope, rel=0.02, abs=2e-3)
        assert calc.n_calls == 2
        assert (tmp_path / "cp2k.inp").is_file()
    finally:
        calc.close()
