"""The HDF5 data set: append/read round trip, deduplication, a killed writer,
n2p2 and extxyz export (read back exactly), imports, outlier filter, CLI."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hpcnnp.cli import main
from hpcnnp.errors import InputFileError
from hpcnnp.io import n2p2
from hpcnnp.io.dataset import (Dataset, DatasetError, Record, export_extxyz, export_n2p2,
                               filter_dataset, find_outliers, import_files, read_structures,
                               structure_hash)

ELEMENTS = np.array([3, 8, 27, 40, 57])       # Li O Co Zr La


def record(rng, n=None, cls="LCO", temperature=1000.0, stress=True):
    n = int(rng.integers(4, 20)) if n is None else n
    cell = np.diag(rng.uniform(6, 9, 3)) + np.triu(rng.uniform(-0.5, 0.5, (3, 3)), 1)
    return Record(numbers=rng.choice(ELEMENTS, n), positions=rng.random((n, 3)) @ cell,
                  cell=cell, pbc=True, energy=-5.0 * n + rng.normal(),
                  forces=rng.normal(size=(n, 3)),
                  stress=rng.normal(size=6) * 0.01 if stress else None,
                  structure_class=cls, temperature=temperature,
                  labeler={"name": "chgnet", "model": "0.3.0"},
                  provenance={"seed": int(rng.integers(100)), "step": 10, "note": "Σ5 ü"})


def assert_same(a, b, atol=0.0):
    """Equal records (*atol*: extxyz from ASE keeps 8 decimals of positions/forces)."""
    np.testing.assert_array_equal(a.numbers, b.numbers)
    for key in ("positions", "cell", "forces"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=0, atol=atol)
    assert a.energy == pytest.approx(b.energy, rel=0, abs=atol)
    assert (a.stress is None) == (b.stress is None)
    if a.stress is not None:
        np.testing.assert_allclose(a.stress, b.stress, rtol=0, atol=atol)
    assert (a.structure_class, a.labeler, a.provenance) == \
        (b.structure_class, b.labeler, b.provenance)


def test_append_read_and_dedup(tmp_path):
    rng = np.random.default_rng(0)
    recs = [record(rng, cls=c, stress=bool(k % 2)) for k, c in
            enumerate(["LCO", "mixture #3", "6Co_La", "GB Σ5(310)/[001]"] * 3)]
    path = tmp_path / "d.h5"
    with Dataset(path, "a") as ds:
        assert ds.append(recs[:7]) == (7, 0)
        assert ds.append(recs + recs[:2]) == (5, 9)          # within-batch duplicates too
    with Dataset(path) as ds:
        assert len(ds) == 12 and ds.n_atoms == sum(len(r.numbers) for r in recs)
        for a, b in zip(recs, ds.records()):
            assert_same(a, b)
        assert_same(recs[5], ds[5])
        assert list(ds.select(classes=["6Co_La"])) == [2, 6, 10]
        atoms = ds.atoms(3)
        assert atoms.info["structure_class"] == "GB Σ5(310)/[001]"
        assert atoms.get_potential_energy() == recs[3].energy
        with pytest.raises(DatasetError, match="read-only"):
            ds.append(recs[:1])


def test_bad_records_and_files_are_rejected_without_damage(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "d.h5"
    with Dataset(path, "a") as ds:
        ds.append([record(rng) for _ in range(3)])
        bad = record(rng)
        bad.forces[0, 1] = np.nan
        with pytest.raises(DatasetError, match="record 1: non-finite forces"):
            ds.append([record(rng), bad])
        hot = record(rng, temperature=-5)
        with pytest.raises(DatasetError, match="temperature must be > 0"):
            ds.append([hot])
        assert len(ds) == 3
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        Dataset(tmp_path / "x.h5")
    with pytest.raises(DatasetError, match="not found"):
        Dataset(tmp_path / "missing.h5")


WRITER = """
import sys, numpy as np
from hpcnnp.io.dataset import Dataset, Record
rng = np.random.default_rng(int(sys.argv[2]))
with Dataset(sys.argv[1], "a") as ds:
    print("open", flush=True)
    while True:
        recs = []
        for _ in range(int(rng.integers(1, 30))):
            n = int(rng.integers(10, 200))
            recs.append(Record(numbers=rng.integers(1, 90, n), positions=rng.random((n, 3)) * 9,
                               cell=np.eye(3) * 9, pbc=True, energy=-rng.random(),
                               forces=rng.normal(size=(n, 3)), structure_class="mixture #3",
                               temperature=3000.0, labeler={"name": "x"},
                               provenance={"k": "v" * int(rng.integers(1, 50))}))
        ds.append(recs)
"""


def test_killed_writer_leaves_a_valid_file(tmp_path):
    path = tmp_path / "d.h5"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    counts = []
    for k in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(k)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "open"
        time.sleep(0.2 + 0.2 * k)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Dataset(path) as ds:                 # opens, counts consistent, all readable
            n = len(ds)
            recs = list(ds.records())
            assert len(recs) == n and len({r.hash for r in recs}) == n
            assert all(np.isfinite(r.energy) and r.provenance["k"] for r in recs)
        counts.append(n)
    assert counts[-1] > counts[0] > 0
    with Dataset(path, "a") as ds:                # and can be appended to again
        assert ds.append([record(np.random.default_rng(9))]) == (1, 0)


def test_hash_ignores_noise_below_rounding():
    rng = np.random.default_rng(2)
    r = record(rng)
    h = structure_hash(r.numbers, r.positions, r.cell)
    assert structure_hash(r.numbers, r.positions + 1e-9, r.cell) == h
    assert structure_hash(r.numbers, r.positions + 1e-3, r.cell) != h


def test_export_n2p2_reads_back_exactly_with_train_test_tags(tmp_path):
    rng = np.random.default_rng(3)
    recs = [record(rng, cls=c) for c in ["LCO", "LLZO cubic"] * 10]
    path = tmp_path / "d.h5"
    with Dataset(path, "a") as ds:
        ds.append(recs)
    out = export_n2p2(path, tmp_path / "input.data", test_fraction=0.25, seed=5)
    assert out == {"structures": 20, "train": 15, "test": 5}
    back = n2p2.read_data(tmp_path / "input.data")
    assert len(back) == 20
    # written in canonical order (class, T, task, step, hash), each tagged with its index
    index = [int(a.info["comment"].rsplit("hpcnnp-dataset:", 1)[1]) for a in back]
    assert sorted(index) == list(range(20))
    assert [a.info["comment"].split(" |")[0] for a in back] == ["LCO"] * 10 + ["LLZO cubic"] * 10
    for i, atoms in zip(index, back):
        rec = recs[i]
        np.testing.assert_array_equal(atoms.numbers, rec.numbers)
        np.testing.assert_array_equal(atoms.positions, rec.positions)
        np.testing.assert_array_equal(np.array(atoms.cell), rec.cell)
        np.testing.assert_array_equal(atoms.get_forces(), rec.forces)
        assert atoms.get_potential_energy() == rec.energy
        assert rec.structure_class in atoms.info["comment"]
    sets = [a.info["set"] for a in back]
    assert sets.count("test") == 5
    again = export_n2p2(path, tmp_path / "again.data", test_fraction=0.25, seed=5)
    assert again == out
    assert [a.info["set"] for a in n2p2.read_data(tmp_path / "again.data")] == sets
    export_n2p2(path, tmp_path / "plain.data")
    assert "set" not in n2p2.read_data(tmp_path / "plain.data")[0].info
    # the same records merged in another order (campaign tasks finish in any order)
    # export to the same structures in the same order with the same tags
    with Dataset(tmp_path / "r.h5", "a") as ds:
        ds.append(recs[::-1])
    export_n2p2(tmp_path / "r.h5", tmp_path / "reversed.data", test_fraction=0.25, seed=5)
    rev = n2p2.read_data(tmp_path / "reversed.data")
    for a, b in zip(back, rev):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.info["set"] == b.info["set"]


def test_extxyz_round_trip_and_import(tmp_path):
    rng = np.random.default_rng(4)
    recs = [record(rng, cls="6Co_La", temperature=4000.0) for _ in range(4)]
    with Dataset(tmp_path / "a.h5", "a") as ds:
        ds.append(recs)
    assert export_extxyz(tmp_path / "a.h5", tmp_path / "a.extxyz") == 4
    back = read_structures(tmp_path / "a.extxyz")
    import ase.io
    order = [int(a.info["dataset_index"]) for a in ase.io.read(tmp_path / "a.extxyz", ":")]
    assert sorted(order) == [0, 1, 2, 3]
    for i, b in zip(order, back):
        a = recs[i]
        assert_same(a, b, atol=1e-8)
        assert b.temperature == 4000.0
    out = import_files(tmp_path / "b.h5", [tmp_path / "a.extxyz"])
    assert out == {"read": 4, "added": 4, "duplicates": 0}
    assert import_files(tmp_path / "b.h5", [tmp_path / "a.extxyz"])["duplicates"] == 4
    with Dataset(tmp_path / "b.h5") as ds:
        assert len(ds) == 4 and ds[0].provenance["import_format"] == "extxyz"


def test_import_cp2k_md_output(tmp_path):
    from ase import units
    pos = ["3", " i =        5, time =        2.500, E =      -40.1234567890"]
    pos += ["  Li  0.1 0.2 0.3", "  Co  1.5 1.6 1.7", "  O   3.0 3.1 2.9"]
    pos += ["3", " i =       10, time =        5.000, E =      -40.1200000000"]
    pos += ["  Li  0.2 0.2 0.3", "  Co  1.5 1.7 1.7", "  O   3.0 3.1 3.0"]
    frc = [line if not line.startswith("  ") else line.split()[0] + "  0.01 -0.02 0.03"
           for line in pos]
    (tmp_path / "md-pos-1.xyz").write_text("\n".join(pos) + "\n")
    (tmp_path / "md-frc-1.xyz").write_text("\n".join(frc) + "\n")
    with pytest.raises(InputFileError, match="no cell for frame 0"):
        read_structures(tmp_path / "md-pos-1.xyz")
    recs = read_structures(tmp_path / "md-pos-1.xyz", cell=[6, 6, 6])
    assert len(recs) == 2
    assert recs[0].energy == pytest.approx(-40.1234567890 * units.Hartree)
    assert recs[1].forces[0, 1] == pytest.approx(-0.02 * units.Hartree / units.Bohr)
    (tmp_path / "md-1.cell").write_text(
        "# Step Time_[fs] Ax Ay Az Bx By Bz Cx Cy Cz Volume\n"
        "5 2.5 6 0 0 0 6 0 0 0 6 216\n10 5.0 6.1 0 0 0 6.1 0 0 0 6.1 226.981\n")
    recs = read_structures(tmp_path / "md-pos-1.xyz")
    assert recs[1].cell[0, 0] == 6.1
    with pytest.raises(InputFileError, match="no structure class"):
        import_files(tmp_path / "c.h5", [tmp_path / "md-pos-1.xyz"])
    assert import_files(tmp_path / "c.h5", [tmp_path / "md-pos-1.xyz"],
                        structure_class="LCO", temperature=1000)["added"] == 2


def test_outlier_filter(tmp_path):
    rng = np.random.default_rng(5)
    recs = [record(rng, n=12) for _ in range(40)]
    for r in recs:
        r.energy = -5.0 * 12 + 0.01 * rng.normal()
    recs[7].energy += 6.0                        # 0.5 eV/atom off
    recs[23].forces[3, 2] = 60.0                 # one absurd force
    with Dataset(tmp_path / "d.h5", "a") as ds:
        ds.append(recs)
    bad = find_outliers(tmp_path / "d.h5", sigma=5)
    assert sorted(bad) == [7, 23]
    assert "energy/atom" in bad[7] and "force component" in bad[23]
    out = filter_dataset(tmp_path / "d.h5", tmp_path / "clean.h5", sigma=5)
    assert out["kept"] == 38
    with Dataset(tmp_path / "clean.h5") as ds:
        assert len(ds) == 38
    with pytest.raises(DatasetError, match="exists"):
        filter_dataset(tmp_path / "d.h5", tmp_path / "clean.h5")


def test_dataset_cli(tmp_path, capsys):
    rng = np.random.default_rng(6)
    with Dataset(tmp_path / "d.h5", "a") as ds:
        ds.append([record(rng, cls=c) for c in ["LCO", "mixture #3"] * 4])
    assert main(["dataset", "info", str(tmp_path / "d.h5")]) == 0
    out = capsys.readouterr().out
    assert "8 structures" in out and "mixture #3" in out
    assert main(["dataset", "info", "--json", str(tmp_path / "d.h5")]) == 0
    assert json.loads(capsys.readouterr().out)["classes"]["LCO"]["structures"] == 4
    assert main(["dataset", "export", str(tmp_path / "d.h5"), "-o",
                 str(tmp_path / "input.data"), "--class", "LCO", "--test-fraction", "0.5"]) == 0
    assert "4 structures" in capsys.readouterr().out
    assert len(n2p2.read_data(tmp_path / "input.data")) == 4
    assert main(["dataset", "export", str(tmp_path / "d.h5"), "-o",
                 str(tmp_path / "x.extxyz")]) == 0
    assert main(["dataset", "import", str(tmp_path / "e.h5"), str(tmp_path / "x.extxyz")]) == 0
    assert main(["dataset", "filter", str(tmp_path / "d.h5"), "--dry-run"]) == 0
    assert main(["dataset", "export", str(tmp_path / "d.h5"), "-o",
                 str(tmp_path / "y.data"), "--class", "nope"]) == 2
    assert "no structure matches" in capsys.readouterr().err
    assert main(["dataset", "info", str(tmp_path / "missing.h5")]) == 2
