"""hpcnnp.testing: synthetic LLZO-like cells and synthetic n2p2 potentials."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from hpcnnp.io import n2p2
from hpcnnp.potential import Potential
from hpcnnp.testing import (LLZO_NUMBER_DENSITY, glorot_weights, llzo_like_cell,
                            synthetic_potential)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n", [1, 7, 200, 2000])
def test_llzo_like_cell(n):
    atoms = llzo_like_cell(n, seed=3)
    assert len(atoms) == n and atoms.pbc.all()
    assert np.isclose(n / atoms.get_volume(), LLZO_NUMBER_DENSITY)
    counts = {el: atoms.get_chemical_symbols().count(el) for el in ("Li", "La", "Zr", "O")}
    assert sum(counts.values()) == n
    for el, c in {"Li": 56, "La": 24, "Zr": 16, "O": 96}.items():
        assert abs(counts[el] - n * c / 192) < 1          # largest-remainder rounding
    if n > 1:
        i, j, d = neighbor_list("ijd", atoms, 1.7)
        assert len(d) == 0                                # min distance, all images
    assert np.array_equal(atoms.positions, llzo_like_cell(n, seed=3).positions)
    assert not np.array_equal(atoms.positions, llzo_like_cell(n, seed=4).positions) \
        or n == 1


def test_llzo_like_cell_neighbour_count():
    atoms = llzo_like_cell(2000, seed=0)
    i, _, _ = neighbor_list("ijd", atoms, 6.0)
    assert 75 < len(i) / len(atoms) < 83                 # ~ rho * 4/3 pi r_c^3 = 80


def test_llzo_like_cell_rejects_jamming():
    with pytest.raises(ValueError):
        llzo_like_cell(100, min_distance=3.0)


def test_glorot_weights_order():
    rng = np.random.default_rng(0)
    w = glorot_weights([4, 3, 1], rng)
    assert w.size == 4 * 3 + 3 + 3 * 1 + 1
    assert np.all(w[12:15] == 0) and w[-1] == 0           # biases after each layer
    assert np.abs(w[:12]).max() <= np.sqrt(6 / 7)


def test_synthetic_potential(tmp_path):
    cells = [llzo_like_cell(150, seed=s) for s in (1, 2)]
    for a in cells:                                       # put some Co in
        sym = a.get_chemical_symbols()
        sym[:10] = ["Co"] * 10
        a.set_chemical_symbols(sym)
    folder = synthetic_potential(tmp_path / "pot", structures=cells, seed=5)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["input.nn", "scaling.data", "weights.003.data", "weights.008.data",
                     "weights.027.data", "weights.040.data", "weights.057.data"]
    pot = Potential.from_n2p2(folder)
    assert pot.elements == ["Li", "O", "Co", "Zr", "La"]
    assert all(len(pot.symmetry_function_list[el]) == 225 for el in pot.elements)
    assert pot.settings.layer_sizes("Li") == [225, 20, 20, 1]
    # scaling from exactly these structures (scale + center, S_min -1, S_max 1):
    # every SF of every element spans exactly S_max - S_min = 2
    for el in pot.elements:
        G = np.array([g for a in cells for s, g in zip(a.get_chemical_symbols(),
                      pot.symmetry_functions(a, scaled=True)) if s == el])
        span = G.max(axis=0) - G.min(axis=0)
        raw = np.array([g for a in cells for s, g in zip(a.get_chemical_symbols(),
                        pot.symmetry_functions(a)) if s == el])
        varies = raw.max(axis=0) > raw.min(axis=0)
        assert np.allclose(span[varies], 2.0, rtol=1e-10)
    # raw statistics are those of the structures (mean, sigma with n-1)
    Li = np.array([g for a in cells for s, g in zip(a.get_chemical_symbols(),
                                                  pot.symmetry_functions(a)) if s == "Li"])
    stats = n2p2.read_scaling(folder / "scaling.data",
                              {el: 225 for el in pot.elements}, pot.elements)["Li"]
    assert np.allclose(stats[:, 2], Li.mean(axis=0), rtol=1e-12, atol=1e-14)
    ok = Li.max(axis=0) > Li.min(axis=0)
    assert np.allclose(stats[ok, 3], Li.std(axis=0, ddof=1)[ok], rtol=1e-10)
    res = pot.compute(cells[0])
    assert np.isfinite(res.energy) and res.n_warnings == 0
    # deterministic
    again = synthetic_potential(tmp_path / "pot2", structures=cells, seed=5)
    assert (again / "weights.003.data").read_text() == \
        (folder / "weights.003.data").read_text()


def test_synthetic_potential_defaults_and_small_sets(tmp_path):
    from hpcnnp.descriptors.sfgen import SymFuncSet

    folder = synthetic_potential(tmp_path, elements=("H", "O"), hidden=(5,),
                                 activations="tl",
                                 sf_sets=[SymFuncSet("radial", "imbalzano2018", "shift",
                                                     3, 4.0)])
    pot = Potential.from_n2p2(folder)
    assert pot.elements == ["H", "O"] and pot.settings.layer_sizes("O") == [6, 5, 1]
    assert np.isfinite(pot.compute(llzo_like_cell(30, formula={"H": 2, "O": 1})).energy)
    with pytest.raises(ValueError):
        synthetic_potential(tmp_path / "x", hidden=(5,), activations="ttl")


def test_bench_descriptors_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "bench_descriptors", REPO / "benchmarks" / "bench_descriptors.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "b.json"
    # (the polynomial-SF line is tested in test_n2p2_examples.py)
    assert bench.main(["--sizes", "40", "--repeat", "1", "--refdata", str(tmp_path / "no"),
                       "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ms/atom" in text and "neighbours/atom" in text
    data = json.loads(out.read_text())
    row = data["results"][0]
    assert row["n_atoms"] == 40
    assert set(row["timings"]) == {"nlist", "sf", "sfd", "ef", "ef+nl"}
    if bench.n2p2_bin() is not None:         # n2p2 measured in the same run
        assert row["timings"]["ef"]["ratio_to_n2p2"] > 0
    else:
        assert "ratio_to_n2p2" not in row["timings"]["ef"] and "n2p2 not found" in text
