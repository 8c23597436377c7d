"""Agreement with the real n2p2 (commit 61daa0d) on every reference case of
``shared/refdata`` (README there): H2O_RPBE-D3 (Bohr/Hartree), Cu2S_PBE (Å/eV),
synth5_A (5 elements, 225 SFs) and synth5_A/big1728.

Reference files (``<case>/dumps``, %.17g):
    ref.G       raw SF values (sorted SF order)         <-> Result.extra["G"]
    ref.Gs      scaled SF values (NN inputs)            <-> Result.extra["Gs"]
    ref.dEdG    dE_i/dG_scaled; the file header says "physical energy units: internal
                dE/dG divided by conv_energy" (the refdata README calls it "training
                units", which is only true without normalisation) <-> extra["dEdGs"]
                (training = internal units) / conv_energy
    ref.atomic  atomic NN output / conv_energy          <-> Result.nn_energies
    ref.energy  E_NNP_total (with mean_energy, offsets) <-> Result.energy
    ref.forces                                          <-> Result.forces

Tolerances (issue): relative 1e-10 for energies and SF values, absolute 1e-8 (the
case's own units) for forces.  "Relative" is applied per value as
    |a - b| <= 1e-10 * max(|b|, floor)
with a floor that is the natural magnitude of the quantity, because a pure relative
test is meaningless for values that are exactly 0 or tiny:

* raw SFs: floor = max(|G_min|, |G_max|) of that SF in scaling.data.  n2p2 dumps the
  raw value as unscale(scale(G)), so its values carry an absolute rounding error of
  ~eps * |G_mean|; Gaussian tails such as exp(-42) = 1.3e-19 come out as exactly 0
  (synth5_A struct 1, atom 4, SF 24) or as -2e-44 for a value of +3e-43.  Relative to
  the SF's own range these are ~1e-17 deviations.
* scaled SFs: floor = |s| * max(|G_min|, |G_max|) and at least 1 (s = scaling factor),
  the image of the raw floor under the scaling G -> S_min + s (G - c); the subtraction
  of the mean cancels digits for values near the centre.
* dE/dG: floor = the largest |dE/dG| of the structure.  For atoms far outside the
  training range (|G_scaled| ~ 1900 in synth5_A struct 2) the tanh neurons saturate and
  1 - tanh^2 has only an absolute accuracy ~eps, so the tiny dE/dG (~1e-10) of such an
  atom is only absolutely accurate.
* atomic energies: floor = the largest |E_i| of the structure (an E_i close to 0 is a
  difference of O(|E_max|) network terms).
* total energies: plain relative (never close to 0 here).
"""

import functools
import re

import numpy as np
import pytest

from hpcnnp.io.n2p2 import read_data
from hpcnnp.potential import Potential

RTOL = 1e-10            # energies, SF values (relative, see the module docstring)
FORCE_ATOL = 1e-8       # forces (absolute, units of the case)
EW_EPSILON = 1000.0 * np.finfo(float).eps   # n2p2's Element::updateSymmetryFunctionStatistics

CASES = {"H2O_RPBE-D3": 2, "Cu2S_PBE": 2, "synth5_A": 3}
STRUCTS = [(c, k) for c, n in CASES.items() for k in range(1, n + 1)]
IDS = [f"{c}-{k}" for c, k in STRUCTS]

# README "quick check values" (E_NNP_total)
QUICK = {("H2O_RPBE-D3", 1): -1225.0701078060083, ("Cu2S_PBE", 1): -567.4011854111103,
         ("synth5_A", 1): -115.79143553495581, ("synth5_A", 2): -402.16477129535025,
         ("synth5_A", 3): -57.737419235438296}


# --------------------------------------------------------------------- reading the dumps

def _rows(path, n_fixed):
    """{(struct, atom): (element, values)} of a dump file (1-based indices)."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            t = line.split()
            out[(int(t[0]), int(t[1]))] = (t[2], np.array(t[n_fixed:], dtype=float))
    return out


def _energies(path):
    with open(path) as f:
        return {int(t[0]): (int(t[1]), float(t[2]))
                for t in (line.split() for line in f if not line.startswith("#"))}


@functools.lru_cache(maxsize=None)
def _potential(root, case):
    return Potential.from_n2p2(root / case / "potential")


@functools.lru_cache(maxsize=None)
def _dumps(root, case):
    d = root / case / "dumps"
    return {"G": _rows(d / "ref.G", 4), "Gs": _rows(d / "ref.Gs", 4),
            "dEdG": _rows(d / "ref.dEdG", 4), "atomic": _rows(d / "ref.atomic", 3),
            "forces": _rows(d / "ref.forces", 3), "energy": _energies(d / "ref.energy")}


@functools.lru_cache(maxsize=None)
def _evaluated(root, case, k):
    """(atoms, Result with full=True) of structure k (1-based) of <case>/input.data."""
    pot = _potential(root, case)
    atoms = read_data(root / case / "input.data", index=k - 1, elements=pot.elements)[0]
    return atoms, pot.compute(atoms, full=True, max_warnings=100000, structure_index=k - 1)


@pytest.fixture(params=STRUCTS, ids=IDS)
def case(request, refdata):
    name, k = request.param
    atoms, res = _evaluated(refdata, name, k)
    return {"name": name, "k": k, "pot": _potential(refdata, name), "atoms": atoms,
            "res": res, "ref": _dumps(refdata, name), "root": refdata}


def _per_atom(case, key):
    k, n = case["k"], len(case["atoms"])
    rows = [case["ref"][key][(k, i + 1)] for i in range(n)]
    symbols = case["atoms"].get_chemical_symbols()
    assert [r[0] for r in rows] == symbols, f"{key}: element column differs from input.data"
    return [r[1] for r in rows]


def _worst(a, b, floor):
    """max over values of |a - b| / max(|b|, floor)."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))


def _sf_floor(pot, el):
    stats = np.asarray(pot.scaling[el])
    return np.max(np.abs(stats[:, :2]), axis=1)


def _scaling_factor(pot, el):
    st = pot.settings.scaling_type
    gmin, gmax, _, gsig = np.asarray(pot.scaling[el]).T
    width = pot.settings.scale_max - pot.settings.scale_min
    if st in ("none", "center"):
        return np.ones_like(gmin)
    if st == "scalesigma":
        return width / gsig
    return width / (gmax - gmin)


# ------------------------------------------------------------------------------ tests

def test_structure_sizes(case):
    n_ref, _ = case["ref"]["energy"][case["k"]]
    assert len(case["atoms"]) == n_ref


def test_sf_values_raw(case):
    pot, res = case["pot"], case["res"]
    worst = 0.0
    for i, ref in enumerate(_per_atom(case, "G")):
        el = case["atoms"][i].symbol
        assert len(ref) == len(pot.symmetry_function_list[el])
        got = res.extra["G"][i, :len(ref)]
        worst = max(worst, _worst(got, ref, _sf_floor(pot, el)))
        assert worst <= RTOL, f"atom {i + 1} ({el}): raw SF deviation {worst:.3e}"
    # the stand-alone SF routine gives the same numbers as compute(full=True)
    for i, g in enumerate(pot.symmetry_functions(case["atoms"])):
        np.testing.assert_array_equal(g, res.extra["G"][i, :len(g)])


def test_sf_values_scaled(case):
    pot, res = case["pot"], case["res"]
    scaled = pot.symmetry_functions(case["atoms"], scaled=True)
    for i, ref in enumerate(_per_atom(case, "Gs")):
        el = case["atoms"][i].symbol
        floor = np.maximum(np.abs(_scaling_factor(pot, el)) * _sf_floor(pot, el), 1.0)
        got = res.extra["Gs"][i, :len(ref)]
        worst = _worst(got, ref, floor)
        assert worst <= RTOL, f"atom {i + 1} ({el}): scaled SF deviation {worst:.3e}"
        # Python-side scaling (Potential.symmetry_functions(scaled=True)) agrees too
        worst = _worst(scaled[i], ref, floor)
        assert worst <= RTOL, f"atom {i + 1} ({el}): symmetry_functions(scaled) {worst:.3e}"


def test_dEdG(case):
    pot, res = case["pot"], case["res"]
    refs = _per_atom(case, "dEdG")
    floor = max(np.abs(r).max() for r in refs)
    for i, ref in enumerate(refs):
        got = res.extra["dEdGs"][i, :len(ref)] / pot.conv_energy
        worst = _worst(got, ref, floor)
        assert worst <= RTOL, f"atom {i + 1}: dE/dG deviation {worst:.3e}"


def test_atomic_energies(case):
    ref = np.array([r[0] for r in _per_atom(case, "atomic")])
    worst = _worst(case["res"].nn_energies, ref, np.abs(ref).max())
    assert worst <= RTOL, f"atomic energies: deviation {worst:.3e}"
    # Result.energies = nn_energies + mean_energy + atom_energy offsets, summing to energy
    pot = case["pot"]
    shift = np.array([pot.mean_energy + pot.atom_energy[s]
                      for s in case["atoms"].get_chemical_symbols()])
    np.testing.assert_allclose(case["res"].energies, case["res"].nn_energies + shift,
                               rtol=1e-14, atol=1e-13 * np.abs(shift).max(initial=1))
    assert case["res"].energies.sum() == pytest.approx(case["res"].energy, rel=1e-14)


def test_total_energy(case):
    _, ref = case["ref"]["energy"][case["k"]]
    assert abs(case["res"].energy - ref) <= RTOL * abs(ref), (case["res"].energy, ref)
    if (case["name"], case["k"]) in QUICK:
        assert case["res"].energy == pytest.approx(QUICK[case["name"], case["k"]], rel=RTOL)


def test_forces(case):
    ref = np.array(_per_atom(case, "forces"))
    err = np.abs(case["res"].forces - ref).max()
    assert err <= FORCE_ATOL, f"forces: max deviation {err:.3e}"


def test_nnp_predict_outputs(case):
    """nnp-predict's own files (energy.out, nnatoms.out, nnforces.out, %24.16E) for
    structure k (predict_k holds structure k as its only structure)."""
    folder = case["root"] / case["name"] / "nnp-predict" / f"predict_{case['k']}"

    def table(name):
        return np.loadtxt(folder / name, comments="#", ndmin=2)

    energy = table("energy.out")
    assert energy.shape[0] == 1 and int(energy[0, 1]) == len(case["atoms"])
    assert abs(case["res"].energy - energy[0, 3]) <= RTOL * abs(energy[0, 3])
    atomic = table("nnatoms.out")
    np.testing.assert_array_equal(atomic[:, 2], case["atoms"].get_atomic_numbers())
    assert _worst(case["res"].nn_energies, atomic[:, 6], np.abs(atomic[:, 6]).max()) <= RTOL
    forces = table("nnforces.out")
    assert np.abs(case["res"].forces - forces[:, 5:8]).max() <= FORCE_ATOL


# --------------------------------------------------------------- extrapolation warnings
#
# n2p2's logs do not contain the warnings (nnp-predict/nnp-dataset write them to stderr,
# which was not kept; the logs only say "Write extrapolation warnings immediately to
# stderr: 1"), so the expected warnings are derived from n2p2's raw SF dump and
# scaling.data with n2p2's own rule (Element::updateSymmetryFunctionStatistics):
#     warning  <=>  value + 1000*DBL_EPSILON < G_min  or  value - 1000*DBL_EPSILON > G_max
# printed, per atom in atom order and SF order, as
#     "### NNP EXTRAPOLATION WARNING ### STRUCTURE: %6zu ATOM: %9zu ELEMENT: %2s "
#     "SYMFUNC: %4zu TYPE: %2zu VALUE: %10.3E MIN: %10.3E MAX: %10.3E"
# with STRUCTURE = 0-based structure index (Structure::index) and ATOM = atom.tag,
# the 0-based atom index within the structure (Structure::readFromLines), SYMFUNC 1-based.

N2P2_EW_FORMAT = ("### NNP EXTRAPOLATION WARNING ### STRUCTURE: %6d ATOM: %9d ELEMENT: %2s "
                  "SYMFUNC: %4d TYPE: %2d VALUE: %10.3E MIN: %10.3E MAX: %10.3E")


def _expected_warnings(case):
    pot, k = case["pot"], case["k"]
    out = []
    for i, g in enumerate(_per_atom(case, "G")):
        el = case["atoms"][i].symbol
        gmin, gmax = np.asarray(pot.scaling[el])[:, :2].T
        for s in np.nonzero((g + EW_EPSILON < gmin) | (g - EW_EPSILON > gmax))[0]:
            sf = pot.symmetry_function_list[el][s]
            out.append({"atom": i, "sf": s + 1, "element": el, "type": sf.sftype,
                        "value": g[s], "min": gmin[s], "max": gmax[s],
                        "line": N2P2_EW_FORMAT % (k - 1, i, el, s + 1, sf.sftype, g[s],
                                                  gmin[s], gmax[s])})
    return out


def test_extrapolation_warning_count(case):
    """Number of warnings per structure = n2p2's (3, 473, 1370 for synth5_A 1-3; none
    for H2O and Cu2S)."""
    expected = _expected_warnings(case)
    n_known = {("synth5_A", 1): 3, ("synth5_A", 2): 473, ("synth5_A", 3): 1370}
    assert len(expected) == n_known.get((case["name"], case["k"]), 0)
    res = case["res"]
    assert res.n_warnings == len(res.warnings) or len(res.warnings) == 100000
    assert res.n_warnings == len(expected), (
        f"{res.n_warnings} warnings, n2p2 gives {len(expected)}; hpcnnp-only: "
        + "; ".join(w.n2p2_line() for w in res.warnings
                    if (w.atom, w.sf) not in {(e["atom"], e["sf"]) for e in expected})[:600])


def _same_value(got, ref, floor):
    """SF value comparison with the raw-SF criterion (n2p2's value is unscale(scale(G)),
    e.g. -2.776E-17 for a true 5.8E-18 when G_mean ~ 0.1)."""
    return abs(got - ref) <= RTOL * max(abs(ref), floor)


def test_extrapolation_warning_records(case):
    """Every n2p2 warning is reported by hpcnnp with the same atom, structure, element,
    SF index, type, min and max, and the same value (raw-SF criterion)."""
    res, pot = case["res"], case["pot"]
    got = {(w.atom, w.sf): w for w in res.warnings}
    for e in _expected_warnings(case):
        w = got.get((e["atom"], e["sf"]))
        assert w is not None, f"missing warning: {e['line']}"
        assert (w.element, w.sf_type, w.structure) == (e["element"], e["type"], case["k"] - 1)
        assert (w.min, w.max) == (e["min"], e["max"])
        floor = _sf_floor(pot, e["element"])[e["sf"] - 1]
        assert _same_value(w.value, e["value"], floor), (w, e["line"])


_EW_LINE = re.compile(r"### NNP EXTRAPOLATION WARNING ### STRUCTURE: +(\d+) ATOM: +(\d+) "
                      r"ELEMENT: +(\w+) SYMFUNC: +(\d+) TYPE: +(\d+) VALUE: +(\S+) "
                      r"MIN: +(\S+) MAX: +(\S+)$")


def test_extrapolation_warning_lines(case):
    """The first lines of Extrapolation.n2p2_line(), in order, are n2p2's: same column
    layout (character positions), STRUCTURE/ATOM/ELEMENT/SYMFUNC/TYPE/MIN/MAX fields
    identical, VALUE equal up to n2p2's unscale(scale(G)) rounding."""
    expected = _expected_warnings(case)[:8]
    got = [w.n2p2_line() for w in case["res"].warnings[:len(expected)]]
    assert len(got) == len(expected)
    for line, e in zip(got, expected):
        assert len(line) == len(e["line"]), (line, e["line"])
        m, m_ref = _EW_LINE.match(line), _EW_LINE.match(e["line"])
        assert m and m_ref, line
        fields = ("STRUCTURE", "ATOM", "ELEMENT", "SYMFUNC", "TYPE", "MIN", "MAX")
        for name, a, b in zip(fields, m.groups()[:5] + m.groups()[6:],
                              m_ref.groups()[:5] + m_ref.groups()[6:]):
            assert a == b, f"{name}: hpcnnp {a!r}, n2p2 {b!r}\n{line}\n{e['line']}"
        floor = _sf_floor(case["pot"], e["element"])[e["sf"] - 1]
        assert _same_value(float(m.group(6)), float(m_ref.group(6)), max(floor, 1e3 *
                                                                    abs(e["value"])))


# ------------------------------------------------------------------------- big1728

def test_big1728(refdata):
    """1728-atom periodic box: total and atomic energies, forces."""
    pot = _potential(refdata, "synth5_A")
    folder = refdata / "synth5_A" / "big1728"
    atoms = read_data(folder / "input.data", elements=pot.elements)[0]
    res = pot.compute(atoms, stress=False)
    (n, e_ref), = _energies(folder / "ref.energy").values()
    assert len(atoms) == n == 1728
    assert abs(res.energy - e_ref) <= RTOL * abs(e_ref)
    assert res.energy == pytest.approx(-3231.2765785842862, rel=RTOL)
    atomic = _rows(folder / "ref.atomic", 3)
    ref = np.array([atomic[(1, i + 1)][1][0] for i in range(n)])
    assert _worst(res.nn_energies, ref, np.abs(ref).max()) <= RTOL
    forces = _rows(folder / "ref.forces", 3)
    ref = np.array([forces[(1, i + 1)][1] for i in range(n)])
    assert np.abs(res.forces - ref).max() <= FORCE_ATOL
