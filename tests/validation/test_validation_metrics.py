"""Error metrics, structure classes and the per-class error table."""
import numpy as np
import pytest
from _helpers import rejected

from hpcnnp.errors import InputFileError
from hpcnnp.validation.classes import ClassResolver, class_from_comment, slugify
from hpcnnp.validation.dataset import ALL, DataSetResult, error_table, evaluate_dataset
from hpcnnp.validation.metrics import error_stats, mae, r2, rmse


def test_metrics_hand_computed():
    ref = [1.0, 2.0, 3.0, 4.0]
    pred = [1.5, 2.0, 2.0, 4.0]
    # differences 0.5, 0, -1, 0: MSE = 1.25/4; SS_tot = 5 (mean 2.5), SS_res = 1.25
    assert rmse(ref, pred) == pytest.approx(np.sqrt(0.3125))
    assert mae(ref, pred) == pytest.approx(0.375)
    assert r2(ref, pred) == pytest.approx(0.75)
    s = error_stats(ref, pred)
    assert (s.n, s.max_abs) == (4, 1.0)
    assert s.scaled(1000).rmse == pytest.approx(1000 * np.sqrt(0.3125))
    assert np.isnan(r2([2.0, 2.0], [1.0, 3.0]))          # constant reference
    assert r2(ref, ref) == 1.0 and rmse(ref, ref) == 0.0
    with pytest.raises(ValueError):
        rmse([1, 2], [1])


def test_class_rules(tmp_path):
    from ase import Atoms
    a = Atoms("Li")
    a.info["comment"] = 'structure_class="GB Σ5(310)" T=1200'
    assert ClassResolver()(a) == "GB Σ5(310)"
    assert class_from_comment("class=LCO seed=1") == "LCO"
    assert class_from_comment("llzo_like_cell n_atoms=5") is None
    # the comments of `hpcnnp dataset export` (what the main job trains on)
    assert class_from_comment("mixture (1 LLZO + 2 LCO) | T=3000K | labeler=chgnet | "
                              "hpcnnp-dataset:17") == "mixture (1 LLZO + 2 LCO)"
    assert class_from_comment("a | b") is None
    b = Atoms("Li")
    b.info.update(comment="anything", structure_class="LLZO cubic")
    assert ClassResolver()(b) == "LLZO cubic"
    assert ClassResolver()(Atoms("Li")) == "unclassified"
    m = tmp_path / "map.csv"
    m.write_text("pattern,class\n# comment line\nSigma ?5|Σ5,GB Σ5\n^any,amorphous\n")
    res = ClassResolver(m)
    assert res(a) == "GB Σ5" and res(b) == "amorphous"       # mapping wins
    rejected(ClassResolver, m, "pattern,class\n(unclosed,x\n", InputFileError,
             match=r"map.csv:2: bad regular expression")
    rejected(ClassResolver, m, "regex,name\n", InputFileError,
             match="header must be 'pattern,class'")
    assert slugify("GB Σ5(310)/[001]") == "GB_Sigma5_310_001"


def _fake_set(name, classes, e_ref, e_ml, n_atoms, f_ref, f_ml):
    s = DataSetResult(name=name, path=None, classes=list(classes))
    s.index = np.arange(len(classes))
    s.n_atoms = np.asarray(n_atoms)
    s.energy_ref, s.energy_ml = np.asarray(e_ref, float), np.asarray(e_ml, float)
    s.force_ref, s.force_ml = np.asarray(f_ref, float), np.asarray(f_ml, float)
    s.atom_structure = np.repeat(np.arange(len(classes)), n_atoms)
    return s


def test_error_table_known_numbers():
    # two structures of class A (2 atoms each), one of class B (1 atom)
    s = _fake_set("train", ["A", "A", "B"], e_ref=[-2.0, -4.0, -1.0],
                  e_ml=[-2.002, -3.996, -1.001], n_atoms=[2, 2, 1],
                  f_ref=np.zeros((5, 3)), f_ml=np.array([[0.1, 0, 0], [0, 0, 0],
                                                         [0, 0, 0], [0, 0, 0],
                                                         [0, 0.3, 0]]))
    t = error_table([s])
    a = t.get("train", "A")
    # per-atom energy errors: -1 meV, +2 meV -> RMSE sqrt(2.5) meV/atom
    assert a.energy.rmse == pytest.approx(np.sqrt(2.5))
    assert a.energy.mae == pytest.approx(1.5)
    # forces of class A: 12 components, one 0.1 -> RMSE 0.1/sqrt(12)
    assert a.forces.rmse == pytest.approx(0.1 / np.sqrt(12))
    assert t.get("train", "B").forces.rmse == pytest.approx(0.3 / np.sqrt(3))
    assert t.get("train", ALL).n_structures == 3
    md = t.markdown()
    assert "| A | 2 | 1.58 (" in md and "**all**" in md
    csv = t.csv().splitlines()
    assert csv[0].startswith("set,class,n_structures")
    assert len(csv) == 1 + 3


def test_per_class_table_from_labelled_set(tmp_path):
    from _validation_helpers import cells, labelled_set, make_potentials

    from hpcnnp import Potential
    ref, ml = make_potentials(tmp_path)
    c = cells()
    data = labelled_set(tmp_path / "test.data", ref,
                        [(c[0], 2, 0.05, None), (c[2], 2, 0.05, None)], seed=1)
    same = error_table([evaluate_dataset(Potential.from_n2p2(ref), data, "test")])
    assert same.get("test").energy.rmse < 1e-9 and same.get("test").forces.rmse < 1e-9
    pot = Potential.from_n2p2(ml)
    res = evaluate_dataset(pot, data, "test")
    assert res.class_names() == ["LLZO cubic", "LCO"]
    t = error_table([res])
    row = t.get("test", "LCO")
    # independent recomputation of the LCO row
    from hpcnnp.io import n2p2
    de, df = [], []
    for a in n2p2.read_data(data):
        if "LCO" not in a.info["comment"]:
            continue
        r = pot.compute(a)
        de.append((r.energy - a.get_potential_energy()) / len(a))
        df.append((r.forces - a.get_forces()).ravel())
    assert row.energy.rmse == pytest.approx(1000 * np.sqrt(np.mean(np.square(de))))
    assert row.forces.rmse == pytest.approx(np.sqrt(np.mean(np.concatenate(df) ** 2)))
    # the perturbed weights give errors of a few meV/atom and meV/Å, not zero
    assert 0.1 < row.energy.rmse < 100 and 1e-4 < row.forces.rmse < 0.5
    assert 0.9 < t.get("test", "LLZO cubic").forces.r2 <= 1.0
