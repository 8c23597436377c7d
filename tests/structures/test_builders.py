"""Tests of the structure builders (hpcnnp.structures) at AIMD and production size.

Independent checks: distances with ASE's cell-list ``neighbor_list`` (never
O(N^2)), charges from the per-atom formal charges, space groups with spglib
(skipped if spglib is not installed).  The 17k-atom structures are built once
per module (fixture ``big``).
"""

from collections import Counter

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from hpcnnp import structures as st

FORMAL = {"Li": 1, "La": 3, "Zr": 4, "O": -2, "Co": 3}
LLZO = {"Li": 56, "La": 24, "Zr": 16, "O": 96}
PRODUCTION = 17000

try:
    import spglib
except ImportError:  # pragma: no cover
    spglib = None

pytestmark = pytest.mark.filterwarnings("ignore:Set OLD_ERROR_HANDLING:DeprecationWarning")


# ---------------------------------------------------------------- helpers
def comp(atoms):
    return dict(Counter(atoms.get_chemical_symbols()))


def scaled(c, k):
    return {e: n * k for e, n in c.items() if n}


def min_dist(atoms, cutoff=2.0):
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    return float(d.min()) if len(d) else np.inf


def charge(atoms):
    q = atoms.get_initial_charges()
    assert np.any(q), "builders store formal charges as initial charges"
    return float(q.sum())


def check_charges_formal(atoms, allowed_co=(3,)):
    """Per-atom formal charges are the standard ones (Co: the allowed states)."""
    q = atoms.get_initial_charges()
    for s, v in zip(atoms.get_chemical_symbols(), q):
        if s == "Co":
            assert v in allowed_co
        else:
            assert v == FORMAL[s]


def check_periodic(atoms):
    assert atoms.pbc.all()
    cell = atoms.cell.array
    assert np.linalg.det(cell) > 1.0
    lengths = atoms.cell.lengths()
    assert lengths.min() > 2.5
    ang = atoms.cell.angles()
    assert np.all((ang > 30) & (ang < 150))
    f = atoms.get_scaled_positions(wrap=False)
    assert np.all(f > -1e-6) and np.all(f < 1 + 1e-6)


def check_common(atoms, dmin=1.5):
    check_periodic(atoms)
    assert abs(charge(atoms)) < 1e-9
    assert min_dist(atoms) >= dmin
    for k in ("builder", "parameters", "reference", "structure_class"):
        assert k in atoms.info
    assert atoms.info["natoms"] == len(atoms)


def spacegroup(atoms, keep=None, symprec=1e-3):
    if spglib is None:
        pytest.skip("spglib not installed")
    if keep is not None:
        atoms = atoms[[s in keep for s in atoms.get_chemical_symbols()]]
    ds = spglib.get_symmetry_dataset((atoms.cell.array, atoms.get_scaled_positions(),
                                      atoms.numbers), symprec=symprec)
    return ds.number


def check_planes(atoms, n=2):
    planes = atoms.info["planes"]
    assert len(planes) == n
    cz = atoms.cell.array[2]
    for p in planes:
        nv = np.asarray(p["normal"], float)
        assert abs(np.linalg.norm(nv) - 1) < 1e-12
        # normal is perpendicular to the in-plane cell vectors
        assert abs(nv @ atoms.cell.array[0]) < 1e-8 and abs(nv @ atoms.cell.array[1]) < 1e-8
        assert 0 < p["position"] < cz @ nv
    pos = sorted(p["position"] for p in planes)
    assert pos[1] - pos[0] > 3.0


# ---------------------------------------------------------------- fixtures
GBS = {13: ((0, 0, 1), (2, 3, 0)), 17: ((0, 0, 1), (5, 3, 0)),
       33: ((0, 1, 1), (5, 2, -2)), 19: ((1, 1, 1), (3, 2, -5))}


@pytest.fixture(scope="module")
def llzo():
    return st.llzo_cubic()


@pytest.fixture(scope="module")
def big(llzo):
    """All production-size (>= 17,000 atoms) structures, built once."""
    out = {
        "supercell": st.supercell(llzo, natoms=PRODUCTION),
        "mixture": st.mixture(model=3, natoms=PRODUCTION),
        "co_doped": st.co_doped_amorphous(n=4, site="La", natoms=PRODUCTION),
        "slab": st.slab(llzo, (0, 0, 1), natoms=PRODUCTION),
        "interface": st.interface(llzo, (0, 0, 1), st.lco(), (1, 0, 4), natoms=PRODUCTION,
                                  max_strain=0.03, gap=2.0),
    }
    for s, (axis, plane) in GBS.items():
        out[f"gb{s}"] = st.grain_boundary(llzo, axis=axis, plane=plane, natoms=PRODUCTION)
    return out


# ---------------------------------------------------------------- crystals
def test_llzo_cubic(llzo):
    assert len(llzo) == 192 and comp(llzo) == LLZO
    check_common(llzo, dmin=1.8)
    check_charges_formal(llzo)
    assert llzo.info["structure_class"] == "LLZO cubic"
    # Li ordering: no two Li closer than 1.6 Å (24d-96h 1.63 Å pairs excluded)
    li = llzo[[s == "Li" for s in llzo.get_chemical_symbols()]]
    assert min_dist(li, 3.0) > 2.3
    assert llzo.info["li_on_24d"] + llzo.info["li_on_96h"] == 56
    a = llzo.cell.lengths()
    assert np.allclose(a, 12.97)


def test_llzo_cubic_primitive_and_determinism(llzo):
    p = st.llzo_cubic(primitive=True)
    assert len(p) == 96 and comp(p) == scaled(LLZO, 0.5)
    check_common(p, dmin=1.8)
    assert abs(p.get_volume() - llzo.get_volume() / 2) < 1e-6
    # the conventional cell is two primitive cells: same Li sites
    again = st.llzo_cubic(seed=0)
    assert np.allclose(again.positions, llzo.positions)
    for ordering in ("tetragonal", "random"):
        o = st.llzo_cubic(ordering=ordering, seed=3)
        assert comp(o) == LLZO
        li = o[[s == "Li" for s in o.get_chemical_symbols()]]
        assert min_dist(li, 3.0) > 1.6


def test_llzo_tetragonal():
    t = st.llzo_tetragonal()
    assert len(t) == 192 and comp(t) == LLZO
    check_common(t, dmin=1.8)
    assert np.allclose(t.cell.cellpar(), [13.134, 13.134, 12.663, 90, 90, 90])


def test_lco():
    c = st.lco()
    assert len(c) == 12 and comp(c) == {"Li": 3, "Co": 3, "O": 6}
    check_common(c, dmin=1.9)
    i, j, d = neighbor_list("ijd", c, 2.2)
    sym = np.array(c.get_chemical_symbols())
    coo = d[(sym[i] == "Co") & (sym[j] == "O")]
    lio = d[(sym[i] == "Li") & (sym[j] == "O")]
    assert np.allclose(coo, 1.92, atol=0.01) and len(coo) == 18
    assert np.allclose(lio, 2.09, atol=0.01) and len(lio) == 18


def test_supercell(llzo, big):
    s = big["supercell"]
    assert s.info["supercell"]["repeat"] == (4, 4, 6)
    assert len(s) == 18432 and comp(s) == scaled(LLZO, 96)
    check_common(s, dmin=1.8)
    assert s.info["structure_class"] == "LLZO cubic"
    lco = st.supercell(st.lco(), natoms=PRODUCTION)
    assert len(lco) >= PRODUCTION and len(lco) % 12 == 0
    check_common(lco, dmin=1.9)
    assert len(st.supercell(llzo, repeat=(1, 1, 2))) == 384


@pytest.mark.skipif(spglib is None, reason="spglib not installed")
@pytest.mark.parametrize("name,build,keep,number", [
    ("cubic framework La/Zr/O", lambda: st.llzo_cubic(), ("La", "Zr", "O"), 230),
    ("cubic primitive framework", lambda: st.llzo_cubic(primitive=True), ("La", "Zr", "O"), 230),
    ("cubic, tetragonal ordering, framework", lambda: st.llzo_cubic(ordering="tetragonal"),
     ("La", "Zr", "O"), 230),
    ("cubic, random ordering, framework", lambda: st.llzo_cubic(ordering="random", seed=2),
     ("La", "Zr", "O"), 230),
    ("tetragonal incl. Li", lambda: st.llzo_tetragonal(), None, 142),
    ("LCO", lambda: st.lco(), None, 166),
    ("Co-doped crystal: O sublattice", lambda: st.co_doped_llzo(4, "La"), ("O",), 230),
])
def test_spacegroups(name, build, keep, number):
    assert spacegroup(build(), keep=keep) == number, name


# ---------------------------------------------------------------- amorphous
MIX = {1: "Li42La12Zr4O74Co18", 2: "Li43La13Zr6O86Co22", 3: "Li29La10Zr5O64Co14",
       4: "Li39La12Zr8O98Co26", 5: "Li32La13Zr6O86Co22"}


def _parse(f):
    import re
    return {e: int(n) for e, n in re.findall(r"([A-Z][a-z]?)(\d+)", f)}


@pytest.mark.parametrize("model", [1, 2, 3, 4, 5])
def test_mixture_small(model):
    m = st.mixture(model=model, seed=1)
    assert comp(m) == _parse(MIX[model])
    check_common(m, dmin=1.6)
    check_charges_formal(m, allowed_co=(3, 4))
    cb = m.info["charge_balance"]
    n4 = {1: 0, 2: 0, 3: 7, 4: 11, 5: 11}[model]
    assert cb["n_Co4"] == n4
    assert 5.0 < m.info["density_g_cm3"] < 5.15
    assert m.info["structure_class"] == f"mixture #{model}"
    assert m.info["method"] == "random packing"
    assert np.allclose(st.mixture(model=model, seed=1).positions, m.positions)


def test_mixture_production(big):
    m = big["mixture"]
    k = int(np.ceil(PRODUCTION / 122))
    assert len(m) == 122 * k and comp(m) == scaled(_parse(MIX[3]), k)
    check_common(m, dmin=1.6)
    assert m.info["charge_balance"]["n_Co4"] == 7


@pytest.mark.parametrize("site,n,expect", [
    ("La", 4, {"Li": 56, "La": 20, "Zr": 16, "Co": 4, "O": 96}),
    ("La", 1, {"Li": 56, "La": 23, "Zr": 16, "Co": 1, "O": 96}),
    ("Zr", 3, {"Li": 59, "La": 24, "Zr": 13, "Co": 3, "O": 96}),
    ("Li", 6, {"Li": 44, "La": 24, "Zr": 16, "Co": 6, "O": 96}),
])
def test_co_doped_small(site, n, expect):
    a = st.co_doped_amorphous(n=n, site=site)
    assert comp(a) == expect
    assert a.info["structure_class"] == f"{n}Co_{site}"
    check_common(a, dmin=1.6)
    q = a.get_initial_charges()[np.array(a.get_chemical_symbols()) == "Co"]
    assert np.all(q == (2 if site == "Li" else 3))
    c = st.co_doped_llzo(n=n, site=site)  # crystalline variant
    assert comp(c) == expect
    check_common(c, dmin=1.6)


def test_co_doped_o_vacancy():
    c = st.co_doped_llzo(n=3, site="Zr", compensation="o_vacancy")
    assert comp(c) == {"Li": 55, "La": 24, "Zr": 13, "Co": 3, "O": 94}
    assert abs(charge(c)) < 1e-9


def test_co_doped_production(big):
    a = big["co_doped"]
    k = int(np.ceil(PRODUCTION / 192))
    assert comp(a) == scaled({"Li": 56, "La": 20, "Zr": 16, "Co": 4, "O": 96}, k)
    check_common(a, dmin=1.6)


def test_amorphous_packing_and_melt_quench(llzo):
    a = st.amorphous(llzo)
    assert comp(a) == LLZO and a.info["method"] == "random packing"
    assert abs(a.get_volume() - llzo.get_volume()) < 1e-6
    assert a.info["structure_class"] == "amorphous LLZO"
    check_common(a, dmin=1.6)
    from ase.calculators.lj import LennardJones
    calc = LennardJones(sigma=1.6, epsilon=0.005, rc=3.5, smooth=True)
    p = st.llzo_cubic(primitive=True)
    mq = st.amorphous(p, temperature=2000, labeler=calc, steps=10, quench_steps=10)
    assert comp(mq) == comp(p) and mq.info["method"] == "melt-quench"
    assert mq.info["md"]["melt_steps"] == 10
    assert abs(charge(mq)) < 1e-9
    dense = st.amorphous(p, start="input", density=4.8)  # rescaled input, no MD
    assert abs(st.mass_density(dense) - 4.8) < 1e-9 and comp(dense) == comp(p)


def test_extxyz_roundtrip(tmp_path, llzo):
    import ase.io
    g = st.grain_boundary(llzo, natoms=100)
    ase.io.write(tmp_path / "gb.extxyz", g)
    b = ase.io.read(tmp_path / "gb.extxyz")
    assert b.info["sigma"] == 13 and len(b.info["planes"]) == 2
    assert np.allclose(b.get_initial_charges(), g.get_initial_charges())


# ---------------------------------------------------------------- slabs
@pytest.mark.parametrize("hkl,expect", [((1, 0, 4), {"Li": 36, "Co": 36, "O": 72}),
                                        ((1, 0, 0), {"Li": 45, "Co": 45, "O": 90}),
                                        ((1, 1, 0), {"Li": 36, "Co": 36, "O": 72})])
def test_lco_slabs(hkl, expect):
    s = st.slab(st.lco(), hkl, vacuum=12.0)
    assert comp(s) == expect
    check_common(s, dmin=1.9)
    t = s.info["termination"]
    assert t["nonpolar"]
    assert s.info["structure_class"] == "LCO(%s) slab" % "".join(map(str, hkl))
    z = s.positions[:, 2]
    assert s.cell.array[2, 2] - (z.max() - z.min()) >= 12.0 - 1e-9


def test_llzo_slab(llzo, big):
    s = st.slab(llzo, (0, 0, 1))
    assert comp(s) == LLZO and s.info["structure_class"] == "LLZO(001) slab"
    assert abs(s.info["surface_area"] - 12.97 ** 2) < 1e-6
    check_common(s, dmin=1.8)
    b = big["slab"]
    assert len(b) >= PRODUCTION and comp(b) == scaled(LLZO, len(b) // 192)
    check_common(b, dmin=1.8)


# ---------------------------------------------------------------- interface
def _check_interface(a, max_strain):
    c = comp(a)
    x = c["La"] // 3
    y = c["Co"]
    assert c == {"Li": 7 * x + y, "La": 3 * x, "Zr": 2 * x, "Co": y, "O": 12 * x + 2 * y}
    check_common(a, dmin=1.8)
    check_planes(a)
    s = a.info["strain"]
    assert s["max_abs"] <= max_strain + 1e-12
    assert abs(s["max_abs"] - max(abs(v) for v in s["principal"])) < 1e-12
    assert a.info["structure_class"] == "interface LLZO(001)|LCO(104)"
    # gap: no atom between the slabs (both interfaces, through PBC)
    z = a.positions[:, 2]
    for p in a.info["planes"]:
        dz = np.abs((z - p["position"] + a.cell[2, 2] / 2) % a.cell[2, 2] - a.cell[2, 2] / 2)
        assert dz.min() >= a.info["gap"] / 2 - 1e-6


def test_interface_small(llzo):
    a = st.interface(llzo, (0, 0, 1), st.lco(), (1, 0, 4), natoms=200, max_strain=0.03)
    _check_interface(a, 0.03)
    assert len(a) < 1200  # smallest feasible cell (see docstring)


def test_interface_production(big):
    a = big["interface"]
    assert len(a) >= PRODUCTION
    _check_interface(a, 0.03)
    assert a.info["strain"]["max_abs"] < 0.01


# ---------------------------------------------------------------- grain boundaries
@pytest.mark.parametrize("sigma", [13, 17, 33, 19])
def test_grain_boundary_small(llzo, sigma):
    axis, plane = GBS[sigma]
    g = st.grain_boundary(llzo, axis=axis, plane=plane, natoms=100)
    assert g.info["sigma"] == sigma
    hkl = "".join(map(str, plane))
    uvw = "".join(map(str, axis))
    assert g.info["structure_class"] == f"GB Σ{sigma}({hkl})/[{uvw}]"
    check_common(g, dmin=1.5)
    check_planes(g)
    assert len(g) == g.info["natoms_defect_free"] - g.info["cleanup"]["n_removed_total"]
    assert len(g) < 1200
    # grains are mirror images: La/Zr framework symmetric about both planes
    assert st.sigma_from_lattices(np.eye(3), np.eye(3)) == 1


@pytest.mark.parametrize("sigma", [13, 17, 33, 19])
def test_grain_boundary_production(big, sigma):
    g = big[f"gb{sigma}"]
    assert g.info["sigma"] == sigma
    assert len(g) >= PRODUCTION
    check_common(g, dmin=1.5)
    check_planes(g)
    r1, r2 = g.info["inplane_repetition"]
    assert len(g) == g.info["natoms_defect_free"] - g.info["cleanup"]["n_removed_total"]
    assert g.info["cleanup"]["n_removed_total"] == r1 * r2 * g.info["cleanup"]["n_removed"]


def test_sigma_counting():
    # simple cubic lattice, mirror in (hkl): Sigma = h^2+k^2+l^2 (halved while even)
    from hpcnnp.structures._lattice import plane_frame
    for hkl, sig in [((1, 2, 0), 5), ((1, 3, 0), 5), ((2, 3, 0), 13), ((1, 1, 1), 3),
                     ((3, 2, -5), 19)]:
        fr = plane_frame(np.eye(3), np.array(hkl, float))
        L1 = np.array([fr.a1, fr.a2, fr.a3])
        assert st.sigma_from_lattices(L1, L1 * [1, 1, -1]) == sig
