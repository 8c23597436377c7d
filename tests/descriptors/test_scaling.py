"""``hpcnnp scale`` (n2p2's nnp-scaling): statistics, files, MPI, bad input.

The data set is generated here: small random periodic cells (and one cluster) of
the LLZO/LCO elements, with the published 225-SF set (sfgen preset llzo-lco).
"""

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import mpiexec_path, subprocess_env

from hpcnnp.cli import main
from hpcnnp.descriptors import scaling
from hpcnnp.descriptors.sfgen import LLZO_LCO_DEFAULT
from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.io import n2p2

REPO = Path(__file__).resolve().parents[2]
ELEMENTS = ("Li", "La", "Zr", "O", "Co")
#: an SF that is 0 for every atom (r_c below the smallest distance): zero range
ZERO_SF = "symfunction_short Li 2 O 0.5 0.0 1.0"


def _input_nn(extra_lines=(), elements=ELEMENTS, sf_text=None):
    head = [f"number_of_elements {len(elements)}", "elements " + " ".join(elements),
            "cutoff_type 6 0.0", "scale_symmetry_functions", "center_symmetry_functions",
            "scale_min_short -1.0", "scale_max_short 1.0", "global_hidden_layers_short 2",
            "global_nodes_short 5 5", "global_activation_short t t l", "use_short_forces"]
    sfs = LLZO_LCO_DEFAULT.generate() if sf_text is None else sf_text
    return "\n".join(head + list(extra_lines)) + "\n" + sfs


def _random_structures(seed=7, n=7):
    """n-1 random periodic cells (22-40 atoms, every element present, min distance
    1.6 Å) and one 18-atom cluster; energies random."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        periodic = k != n - 1
        n_atoms = int(rng.integers(22, 41)) if periodic else 18
        symbols = list(ELEMENTS) + list(rng.choice(["Li", "O", "O", "La", "Zr", "Co"],
                                                   n_atoms - len(ELEMENTS)))
        length = (n_atoms / 0.075) ** (1 / 3)
        cell = np.diag([length] * 3) + rng.uniform(-0.4, 0.4, (3, 3))
        pos = []
        while len(pos) < n_atoms:
            if periodic:
                trial = rng.random(3) @ cell
            else:
                trial = rng.normal(size=3) * 2.5
            ok = True
            for p in pos:
                d = trial - p
                if periodic:
                    frac = np.linalg.solve(cell.T, d)
                    d = (frac - np.round(frac)) @ cell
                if np.dot(d, d) < 1.6**2:
                    ok = False
                    break
            if ok:
                pos.append(trial)
        atoms = Atoms(symbols, positions=pos, cell=cell if periodic else None,
                      pbc=periodic)
        atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal(-100, 5)),
                                           forces=np.zeros((n_atoms, 3)))
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale_data")
    (folder / "input.nn").write_text(_input_nn([]) + ZERO_SF + "\n")
    structures = _random_structures()
    n2p2.write_data(folder / "input.data", structures)
    return folder


@pytest.fixture(scope="module")
def serial_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("scale_serial")
    with pytest.warns(scaling.ScalingWarning, match=r"Li SF \d+ \(type 2"):
        result = scaling.run_scaling(dataset / "input.nn", dataset / "input.data", out,
                                     nbins=40, function_data=True, progress_interval=0)
    return result, out


def _direct_sfs(dataset):
    """SF values of all atoms per element, straight from Potential."""
    from hpcnnp.potential import Potential

    st = n2p2.read_settings(dataset / "input.nn")
    pot = Potential(st)
    per = {el: [] for el in st.elements}
    for atoms in n2p2.iter_data(dataset / "input.data"):
        for sym, g in zip(atoms.get_chemical_symbols(), pot.symmetry_functions(atoms)):
            per[sym].append(g)
    return st, {el: np.array(v) for el, v in per.items()}


def test_scale_statistics_equal_numpy(dataset, serial_run):
    result, out = serial_run
    st, G = _direct_sfs(dataset)
    stats = n2p2.read_scaling(out / "scaling.data", {el: st.n_sf(el) for el in st.elements},
                              st.elements)
    for el in st.elements:
        g = G[el]
        assert result.n_atoms[el] == len(g)
        assert np.array_equal(stats[el][:, 0], g.min(axis=0))
        assert np.array_equal(stats[el][:, 1], g.max(axis=0))
        exact_mean = np.array([math.fsum(c) for c in g.T]) / len(g)
        np.testing.assert_allclose(stats[el][:, 2], exact_mean, rtol=5e-16, atol=0)
        np.testing.assert_allclose(stats[el][:, 3], g.std(axis=0, ddof=1), rtol=1e-12,
                                   atol=1e-300)
        np.testing.assert_array_equal(stats[el], result.statistics[el])
    assert result.n_structures == 7


def test_scale_scaling_file_format(serial_run):
    _, out = serial_run
    lines = (out / "scaling.data").read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert "".join(h + "\n" for h in header) == n2p2._SCALING_HEADER
    row = re.compile(r"^ {0,9}\d+ {1,10}\d+( +-?\d\.\d{16}E[+-]\d{2,3}){4}$")
    data = [line for line in lines if not line.startswith("#")]
    assert all(row.match(line) and len(line) == 121 for line in data)
    assert len(data) == 4 * 225 + 226                 # Li has the extra zero-range SF


def test_scale_zero_range_and_histograms(dataset, serial_run):
    result, out = serial_run
    st, G = _direct_sfs(dataset)
    li = st.symmetry_functions["Li"]
    k = next(i for i, sf in enumerate(li) if sf.rc == 1.0)
    assert [z[:2] for z in result.zero_range] == [("Li", k + 1)]
    assert not (out / (scaling.HISTO_FORMAT % (3, k + 1))).exists()
    histos = sorted(p.name for p in out.glob("sf.*.histo"))
    assert len(histos) == 5 * 225                    # all but the zero-range SF
    # one histogram against GSL's rule, computed independently
    s = 7
    g = G["Li"][:, s]
    text = (out / (scaling.HISTO_FORMAT % (3, s + 1))).read_text()
    assert text.startswith(f"#SFINFO lineNumber  {li[s].line}\n#SFINFO index       {s + 1}\n")
    assert f"#SFINFO min         {g.min():15.8E}\n" in text
    assert "# Symmetry function histogram." in text
    table = np.loadtxt(text.splitlines())
    assert table.shape == (40, 3)
    lo, hi = g.min(), g.max()
    top = hi + (hi - lo) / 39
    edges = np.array([(40 - i) / 40 * lo + i / 40 * top for i in range(41)])
    np.testing.assert_allclose(table[:, 0], edges[:-1], rtol=1e-8)
    expected = np.zeros(40)
    for x in g:
        expected[np.searchsorted(edges, x, side="right") - 1] += 1
    np.testing.assert_array_equal(table[:, 2], expected)
    assert table[:, 2].sum() == len(g)


def test_histogram_counts_gsl_rule():
    rng = np.random.default_rng(3)
    vals = rng.random((500, 6)) ** 3
    vals[:5] = vals.min(axis=0)                       # ties at the minimum
    vals[5:10] = vals.max(axis=0)                     # ... and the maximum
    edges = scaling.histogram_edges(vals.min(axis=0), vals.max(axis=0), 17)
    counts = scaling.histogram_counts(vals, edges, chunk_values=700)
    for s in range(6):
        ref = np.bincount(np.searchsorted(edges[s], vals[:, s], side="right") - 1,
                          minlength=17)
        np.testing.assert_array_equal(counts[s], ref)
    assert (counts.sum(axis=1) == 500).all()
    # the maximum: last bin, or the one before when GSL's rounded edge_(n-1) > max
    assert counts[:, -2:].sum(axis=1).min() >= 5


def test_running_stats_partitions_and_stability():
    rng = np.random.default_rng(11)
    x = 1e6 + rng.normal(size=(4000, 3))              # large offset: naive sums fail
    ref_mean = np.array([math.fsum(c) for c in x.T]) / len(x)      # correctly rounded
    ref_sigma = np.sqrt(np.array([math.fsum(d * d) for d in (x - ref_mean).T]) / 3999)
    results = []
    for parts in ([4000], [1, 999, 3000], [7] * 571 + [3], [2000, 2000]):
        ranks = [scaling.RunningStats(3) for _ in range(3)]
        start = 0
        for k, size in enumerate(parts):             # round robin over 3 "ranks"
            ranks[k % 3].add(x[start:start + size])
            start += size
        total = scaling.RunningStats(3)
        for r in ranks:
            total.merge(r)
        results.append(total.table())
        assert total.count == 4000
        np.testing.assert_allclose(total.mean, ref_mean, rtol=2.5e-16, atol=0)   # ~1 ulp
        np.testing.assert_allclose(total.sigma, ref_sigma, rtol=1e-9)
    for t in results:
        assert np.array_equal(t[:, :2], results[0][:, :2])
    # SF-like data (>= 0, sigma ~ mean): any partition agrees to ~1e-15
    y = np.abs(rng.normal(size=(3000, 4))) ** 2
    tables = []
    for sizes in ([3000], [5] * 600, [1000, 7, 1993]):
        acc = [scaling.RunningStats(4) for _ in range(2)]
        for k, chunk in enumerate(np.split(y, np.cumsum(sizes)[:-1])):
            acc[k % 2].add(chunk)
        acc[0].merge(acc[1])
        tables.append(acc[0].table())
    for t in tables:
        assert np.array_equal(t[:, :2], tables[0][:, :2])
        np.testing.assert_allclose(t[:, 2:], tables[0][:, 2:], rtol=2e-15, atol=0)
        np.testing.assert_allclose(t[:, 3], y.std(axis=0, ddof=1), rtol=1e-14)


def test_scale_neighbor_files_and_memory(dataset, serial_run):
    from ase.neighborlist import neighbor_list

    result, out = serial_run
    st = n2p2.read_settings(dataset / "input.nn")
    rows = np.loadtxt(out / "neighbors.out", dtype=np.int64)
    assert rows.shape == (sum(result.n_atoms.values()), 4 + 5)
    expected, mem_v, mem_d = [], 0, 0
    for k, atoms in enumerate(n2p2.iter_data(dataset / "input.data")):
        i, j = neighbor_list("ij", atoms, 6.0, self_interaction=False)
        counts = np.bincount(i, minlength=len(atoms))
        sym = np.array(atoms.get_chemical_symbols())
        for a in range(len(atoms)):
            per = [int((sym[j[i == a]] == el).sum()) for el in st.elements]
            expected.append([k, a, atoms.numbers[a], counts[a]] + per)
            n_sf = st.n_sf(sym[a])
            mem_v += 8 * n_sf
            mem_d += 24 * n_sf * (counts[a] + 1)
    np.testing.assert_array_equal(rows, np.array(expected))
    assert result.memory["values"] == mem_v and result.memory["derivatives_dense"] == mem_d
    # compact layout: what the C core actually stores (dG of the atom + per neighbour
    # only the SFs depending on its element), checked on the engine's own output
    from hpcnnp.potential import Potential
    pot = Potential(st)
    mem_c = 0
    for atoms in n2p2.iter_data(dataset / "input.data"):
        for g, dself, blocks in pot.symmetry_function_derivatives(atoms, compact=True):
            mem_c += 8 * (len(g) + dself.size + sum(b[2].size for b in blocks))
    assert result.memory["derivatives"] + mem_v == mem_c
    assert result.memory["total"] == mem_c < mem_v + mem_d
    histo = np.loadtxt(out / "neighbors.histo")
    assert histo.shape[1] == 3 + 5
    assert histo[:, 2].sum() == len(rows)
    np.testing.assert_array_equal(histo[:, 2], histo[:, 3:].sum(axis=1))
    top = rows[:, 3].max()
    assert histo.shape[0] == top + 1 and histo[top, 2] == (rows[:, 3] == top).sum()
    log = (out / "scale.log").read_text()
    assert "Estimated memory for training" in log and f"{mem_c:,} bytes" in log
    assert f"{mem_d:,} bytes" in log


def test_scale_function_data(dataset, serial_run):
    _, out = serial_run
    st, _ = _direct_sfs(dataset)
    lines = (out / "function.data").read_text().splitlines()
    from hpcnnp.potential import Potential
    atoms = n2p2.read_data(dataset / "input.data", 0)[0]
    G = Potential(st).symmetry_functions(atoms)
    n = len(atoms)
    assert lines[0] == "%6d" % n
    assert lines[1] == "%3d " % atoms.numbers[0] + "".join(" %14.10f" % v for v in G[0])
    e = atoms.get_potential_energy() / n
    assert lines[n + 1] == " %19.10f %19.10f %19.10f %19.10f" % (0.0, e, e, 0.0)
    assert sum(1 for line in lines if len(line.split()) == 1) == 7


def test_scale_spill_to_disk_same_histograms(dataset, serial_run, tmp_path):
    result, _ = serial_run
    with pytest.warns(scaling.ScalingWarning):
        spilled = scaling.compute_scaling(dataset / "input.nn", dataset / "input.data",
                                          nbins=40, cache_limit=0, spill_dir=tmp_path)
    for el in result.elements:
        np.testing.assert_array_equal(spilled.histograms[el][1], result.histograms[el][1])
        np.testing.assert_array_equal(spilled.statistics[el], result.statistics[el])
    assert list(tmp_path.iterdir()) == []            # temporary files are gone


def test_scale_cli_in_current_folder(dataset, tmp_path, monkeypatch, capsys):
    for name in ("input.nn", "input.data"):
        shutil.copy(dataset / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(["scale", "12", "--no-neighbors-out", "--progress-interval", "0"]) == 0
    cap = capsys.readouterr()
    assert "Neighbours within r_c = 6" in cap.out and "Estimated memory" in cap.out
    assert "warning: 1 symmetry function(s) have zero range" in cap.err
    assert (tmp_path / "scaling.data").exists() and (tmp_path / "neighbors.histo").exists()
    assert not (tmp_path / "neighbors.out").exists()
    assert len(np.loadtxt(tmp_path / "sf.003.0002.histo")) == 12
    assert not (tmp_path / "sf.003.0001.histo").exists()      # the zero-range SF
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_scale_normalisation_does_not_change_sfs(dataset, serial_run, tmp_path):
    result, _ = serial_run
    text = (dataset / "input.nn").read_text()
    (tmp_path / "input.nn").write_text("mean_energy -3.5\nconv_energy 2.0\n"
                                       "conv_length 1.8897261258369282\n" + text)
    with pytest.warns(scaling.ScalingWarning):
        norm = scaling.compute_scaling(tmp_path / "input.nn", dataset / "input.data",
                                       histograms=False)
    for el in result.elements:
        np.testing.assert_array_equal(norm.statistics[el], result.statistics[el])


def test_scale_unwritable_output(dataset, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.warns(scaling.ScalingWarning):
        with pytest.raises(HpcnnpError, match="cannot write the output files"):
            scaling.run_scaling(dataset / "input.nn", dataset / "input.data",
                                tmp_path / "afile" / "out", nbins=5, function_data=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_scale_dry_run_writes_nothing(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["scale", "--settings", str(dataset / "input.nn"), "--data",
                 str(dataset / "input.data"), "-o", str(out), "--dry-run"]) == 0
    assert "Estimated memory" in capsys.readouterr().out
    assert not out.exists()


# ---------------------------------------------------------------------------------------
# Bad input: one-line error with file and line, exit code 2, nothing written
# ---------------------------------------------------------------------------------------

def _run_cli(folder, *extra):
    return main(["scale", "--settings", str(folder / "input.nn"), "--data",
                 str(folder / "input.data"), "-o", str(folder / "out"), *extra])


def _bad_case(tmp_path, dataset, nn_text=None, data_text=None):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "scaling.data").write_text("old\n")
    (tmp_path / "input.nn").write_text(nn_text if nn_text is not None else
                                       (dataset / "input.nn").read_text())
    (tmp_path / "input.data").write_text(data_text if data_text is not None else
                                         (dataset / "input.data").read_text())
    return tmp_path


def _assert_failed(folder, capsys, pattern):
    err = [ln for ln in capsys.readouterr().err.strip().splitlines()
           if not ln.startswith("hpcnnp scale: pass ")]       # progress lines
    assert len(err) == 1 and re.search(pattern, err[0]), err
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["scaling.data"]
    assert (folder / "out" / "scaling.data").read_text() == "old\n"


def test_scale_bad_element_without_sfs(dataset, tmp_path, capsys):
    text = "\n".join(line for line in _input_nn().splitlines()
                     if not line.startswith("symfunction_short Co "))
    f = _bad_case(tmp_path, dataset, nn_text=text)
    assert _run_cli(f) == 2
    _assert_failed(f, capsys, r"input\.nn:2: element Co has no symmetry function")


def test_scale_bad_element_not_in_settings(dataset, tmp_path, capsys):
    elements = ("Li", "La", "Zr", "O")
    from hpcnnp.descriptors.sfgen import SymFuncConfig
    sf = SymFuncConfig(elements, LLZO_LCO_DEFAULT.sets).generate()
    f = _bad_case(tmp_path, dataset, nn_text=_input_nn(elements=elements, sf_text=sf))
    assert _run_cli(f) == 2
    first_co = next(i for i, line in enumerate((f / "input.data").read_text().splitlines(), 1)
                    if line.startswith("atom") and line.split()[4] == "Co")
    _assert_failed(f, capsys, rf"input\.data:{first_co}: element 'Co' is not one of the "
                   "potential's elements")


def test_scale_bad_element_without_atoms(dataset, tmp_path, capsys):
    elements = ELEMENTS + ("Mg",)
    from hpcnnp.descriptors.sfgen import SymFuncConfig
    sf = SymFuncConfig(elements, LLZO_LCO_DEFAULT.sets[:1]).generate()
    f = _bad_case(tmp_path, dataset, nn_text=_input_nn(elements=elements, sf_text=sf))
    assert _run_cli(f) == 2
    _assert_failed(f, capsys, r"input\.data: no atoms of element\(s\) Mg")


def test_scale_bad_empty_data(dataset, tmp_path, capsys):
    f = _bad_case(tmp_path, dataset, data_text="")
    with pytest.raises(InputFileError, match="no structures"):
        scaling.run_scaling(f / "input.nn", f / "input.data", f / "out")
    assert _run_cli(f) == 2
    _assert_failed(f, capsys, r"input\.data: no structures")


def test_scale_bad_structure_and_parse_errors(dataset, tmp_path, capsys):
    lines = (dataset / "input.data").read_text().splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.startswith("begin")]
    atom = begins[3] + 1
    while not lines[atom].startswith("atom"):
        atom += 1
    tok = lines[atom].split()
    lines[atom + 1] = " ".join(["atom", tok[1], tok[2], str(float(tok[3]) + 0.05)]
                               + lines[atom + 1].split()[4:]) + "\n"
    f = _bad_case(tmp_path, dataset, data_text="".join(lines))
    assert _run_cli(f) == 2
    _assert_failed(f, capsys, rf"input\.data:{begins[3] + 1}: structure 4: atoms .*closer")
    # a truncated file: the message names the line where the last structure began
    (f / "input.data").write_text("".join((dataset / "input.data").read_text()
                                          .splitlines(keepends=True)[:-1]))
    assert _run_cli(f) == 2
    _assert_failed(f, capsys, rf"began at line {begins[-1] + 1} \(missing 'end'")
    assert _run_cli(f, "1") == 2
    _assert_failed(f, capsys, r"NBINS must be an integer >= 2")
    with pytest.raises(HpcnnpError, match=">= 2"):
        scaling.ScalingRun(f / "input.nn", f / "input.data", nbins=1)


# ---------------------------------------------------------------------------------------
# MPI
# ---------------------------------------------------------------------------------------

def _scale_subprocess(n, folder, out, *extra):
    cmd = [sys.executable, "-m", "hpcnnp.cli", "scale", "40", "--function-data",
           "--settings", str(folder / "input.nn"), "--data", str(folder / "input.data"),
           "-o", str(out), *extra]
    if n > 1:
        cmd = [mpiexec_path(), "-n", str(n)] + cmd
    return subprocess.run(cmd, env=subprocess_env(repo_path=True, OPENBLAS_NUM_THREADS=1),
                          capture_output=True, text=True, timeout=240)


@pytest.mark.mpi
def test_scale_mpi_two_ranks_equal_serial(dataset, serial_run, tmp_path):
    if mpiexec_path() is None:
        pytest.skip("mpiexec not found next to the Python interpreter or on PATH")
    pytest.importorskip("mpi4py")
    _, serial = serial_run
    proc = _scale_subprocess(2, dataset, tmp_path / "mpi")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 ranks" in proc.stdout
    assert proc.stdout.count("Pass 2 (symmetry functions)") == 1      # rank 0 prints
    a = [line.split() for line in (tmp_path / "mpi" / "scaling.data").read_text().splitlines()
         if not line.startswith("#")]
    b = [line.split() for line in (serial / "scaling.data").read_text().splitlines()
         if not line.startswith("#")]
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra[:4] == rb[:4]                      # indices, min, max bit-identical
        for x, y in zip(ra[4:], rb[4:]):
            x, y = float(x), float(y)
            assert abs(x - y) <= 1e-14 * abs(y), (ra, rb)
    for name in ("neighbors.out", "neighbors.histo", "function.data", "sf.003.0008.histo",
                 "sf.057.0225.histo"):
        assert (tmp_path / "mpi" / name).read_bytes() == (serial / name).read_bytes(), name
    assert len(list((tmp_path / "mpi").glob("sf.*.histo"))) == 5 * 225
    assert not [p for p in (tmp_path / "mpi").iterdir() if p.name.startswith(".")]


@pytest.mark.mpi
def test_scale_mpi_error_on_one_rank(dataset, tmp_path):
    if mpiexec_path() is None:
        pytest.skip("mpiexec not found next to the Python interpreter or on PATH")
    pytest.importorskip("mpi4py")
    lines = (dataset / "input.data").read_text().splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.startswith("begin")]
    lines.insert(begins[5] + 1, "\n")                # structure 6 -> rank 1
    (tmp_path / "input.data").write_text("".join(lines))
    shutil.copy(dataset / "input.nn", tmp_path / "input.nn")
    proc = _scale_subprocess(2, tmp_path, tmp_path / "out")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err == [f"hpcnnp scale: error: {tmp_path / 'input.data'}:{begins[5] + 2}: "
                   "blank line (n2p2 does not allow blank lines in input.data)"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
