"""The SF types that no shipped n2p2 example uses (12, 13, 21, 23, 24, 25), and every
cutoff function and compact-function core of 12/13/20-25, against n2p2 run here.

For each variant a small random potential (Li/O, the SF sets of ``_synthetic``) and three
structures (a triclinic cell, a 3.5 Å cell smaller than the 6 Å cutoff, a cluster) are
written in n2p2's formats; then, on these same files,

* ``nnp-dataset`` gives energies and forces (``output.data``, 17 digits): energies
  <= 1e-10 relative (to the sum of |E_i|: with random weights a total energy can be a
  near-cancelling sum), forces <= 1e-8 absolute.  In the cell smaller than the cutoff the
  forces are compared with central differences (fourth order, step 1e-4 Å) of n2p2's
  own energies instead: there n2p2 61daa0d's analytic angular-SF forces (types 3, 9, 13,
  21, 22, 24, 25 alike) are not the derivative of its energy (off by up to 0.08 eV/Å in
  this cell, while its energies agree with hpcnnp's to 1e-15);
* ``nnp-predict`` on the triclinic cell gives atomic energies: <= 1e-10 relative to the
  largest atomic energy of the structure;
* ``nnp-scaling`` gives min/max/mean/sigma of every raw SF over all atoms: <= 1e-10
  relative to the SF's largest |value| (a direct check of the SF values), and its
  histogram files start with the parameter lines hpcnnp writes (``#SFINFO``).

The numbers come from n2p2 run in the test (``_n2p2``), never from stored constants.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _n2p2 import nnatoms, run
from _synthetic import (compact_boundaries, compact_symfunctions, random_structure,
                        synth_cutoffs, triclinic_cell, weighted_symfunctions,
                        write_synthetic_potential)

from ase.data import atomic_numbers

from hpcnnp.descriptors.scaling import sfinfo_lines
from hpcnnp.io.n2p2 import read_data, read_scaling, write_data
from hpcnnp.potential import Potential

RTOL = 1e-10
FORCE_ATOL = 1e-8
SF_FLOOR = 1e-5      # smallest SF magnitude the relative SF-value criterion applies to
SMALL_CELL = np.array([[3.5, 0.0, 0.0], [1.1, 3.4, 0.0], [-0.8, 0.9, 3.6]])


def _structures(seed, avoid):
    rng = np.random.default_rng(seed)
    kw = {"avoid": avoid, "avoid_tolerance": 2e-3}
    return [random_structure(rng, 9, cell=triclinic_cell(rng), **kw),
            random_structure(rng, 4, cell=SMALL_CELL, min_distance=1.5, **kw),
            random_structure(rng, 7, periodic=False, **kw)]


CUTOFFS = [(t, a) for t in range(9) for a in (0.0, 0.3)]
SUBTYPES = ["p1", "p2", "p3", "p4", "p1a", "p2a", "p3a", "p4a", "e"]
VARIANTS = ([("weighted", t, a) for t, a in CUTOFFS]
            + [("compact", s, 0.0) for s in SUBTYPES])
IDS = [f"12-13-cut{t}-a{a}" if k == "weighted" else f"20-25-{t}" for k, t, a in VARIANTS]


@pytest.fixture(params=VARIANTS, ids=IDS)
def variant(request, tmp_path, n2p2):
    kind, which, alpha = request.param
    if kind == "weighted":
        avoid = sorted(set(synth_cutoffs()) | {0.3 * rc for rc in synth_cutoffs()})
        sfs, cutoff_type = weighted_symfunctions(), which
    else:
        avoid, sfs, cutoff_type = compact_boundaries(), compact_symfunctions(which), 6
    seed = VARIANTS.index(request.param)
    structures = _structures(50 + seed, avoid)
    folder = write_synthetic_potential(tmp_path / "pot", structures, symfunctions=sfs,
                                       cutoff_type=cutoff_type, cutoff_alpha=alpha,
                                       seed=seed)
    with open(folder / "input.nn", "a") as f:
        f.write("use_short_forces\nrandom_seed 1\n")
    write_data(folder / "input.data", structures)
    return {"folder": folder, "structures": structures, "bin": n2p2,
            "pot": Potential.from_n2p2(folder), "label": request.node.callspec.id}


FD_STEP = 1e-4
FD_STENCIL = ((2, -1 / 12), (1, 8 / 12), (-1, -8 / 12), (-2, 1 / 12))


def _displaced(atoms):
    """Copies of *atoms* with one coordinate moved by k FD_STEP (stencil order)."""
    out = []
    for a in range(len(atoms)):
        for c in range(3):
            for k, _ in FD_STENCIL:
                moved = atoms.copy()
                pos = moved.get_positions()
                pos[a, c] += k * FD_STEP
                moved.set_positions(pos)
                out.append(moved)
    return out


def _smaller_than_cutoff(atoms, cutoff):
    if not atoms.pbc.all():
        return False
    cell = atoms.cell.array
    vol = abs(np.linalg.det(cell))
    widths = [vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
              for k in range(3)]
    return min(widths) < cutoff


def test_energies_forces_vs_nnp_dataset(variant):
    structures, pot = variant["structures"], variant["pot"]
    small = [k for k, a in enumerate(structures) if _smaller_than_cutoff(a, pot.cutoff)]
    assert small, "the variant needs a cell smaller than the cutoff"
    extra = [m for k in small for m in _displaced(structures[k])]
    write_data(variant["folder"] / "input.data", structures + extra)
    run(variant["bin"], "nnp-dataset", variant["folder"], 0)
    ref = read_data(variant["folder"] / "output.data")
    assert len(ref) == len(structures) + len(extra)
    energies = np.array([r.get_potential_energy() for r in ref])
    offset = len(structures)
    for k, (atoms, r) in enumerate(zip(structures, ref)):
        res = pot.compute(atoms)
        e_ref = r.get_potential_energy()
        # relative to the sum of |E_i| (a total close to 0 is a difference of larger
        # atomic energies)
        scale = max(abs(e_ref), np.abs(res.energies).sum())
        assert abs(res.energy - e_ref) <= RTOL * scale, (variant["label"], k,
                                                        res.energy, e_ref)
        if k in small:      # forces from n2p2's energies (see the module docstring)
            n = 3 * len(atoms) * len(FD_STENCIL)
            e = energies[offset:offset + n].reshape(len(atoms), 3, len(FD_STENCIL))
            offset += n
            f_ref = -(e @ np.array([w for _, w in FD_STENCIL])) / FD_STEP
            err = np.abs(res.forces - f_ref).max()
            assert err <= 1e-6 * np.abs(f_ref).max(), (
                f"{variant['label']} structure {k}: forces vs differences of n2p2's "
                f"energies {err:.2e}")
            continue
        err = np.abs(res.forces - r.get_forces()).max()
        assert err <= FORCE_ATOL, f"{variant['label']} structure {k}: forces {err:.2e}"
        assert np.abs(r.get_forces()).max() > 1e-3      # n2p2 computed forces


def test_atomic_energies_vs_nnp_predict(variant, tmp_path):
    folder = tmp_path / "predict"
    shutil.copytree(variant["folder"], folder)
    atoms = variant["structures"][0]
    write_data(folder / "input.data", [atoms])
    run(variant["bin"], "nnp-predict", folder, 0)
    ref = nnatoms(folder / "nnatoms.out")
    got = variant["pot"].compute(atoms).nn_energies
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= RTOL, f"{variant['label']}: atomic energies deviate by {err:.2e}"


def test_sf_statistics_vs_nnp_scaling(variant, tmp_path):
    folder = tmp_path / "scaling"
    folder.mkdir()
    for name in ("input.nn", "input.data"):
        shutil.copy(variant["folder"] / name, folder / name)
    run(variant["bin"], "nnp-scaling", folder, 10)
    pot = variant["pot"]
    n_sf = {el: len(pot.symmetry_function_list[el]) for el in pot.elements}
    ref = read_scaling(folder / "scaling.data", n_sf, pot.elements)
    raw = {el: [] for el in pot.elements}
    for atoms in variant["structures"]:
        for sym, g in zip(atoms.get_chemical_symbols(), pot.symmetry_functions(atoms)):
            raw[sym].append(g)
    for el in pot.elements:
        g = np.array(raw[el])
        assert (np.abs(g).max(0) > 0).all()          # every SF is exercised
        # n2p2's Horner forms of the compact cores give each term ~1e-16 absolute
        # rounding near the interval ends, whatever the term's size: an SF whose
        # largest value is 5e-6 (p4a) agrees to 5.6e-16, i.e. 1.1e-10 of itself
        scale = np.maximum(np.abs(g).max(0), SF_FLOOR)
        ours = np.column_stack([g.min(0), g.max(0), g.mean(0)])
        err = (np.abs(ours - ref[el][:, :3]) / scale[:, None]).max()
        assert err <= RTOL, f"{variant['label']} {el}: SF min/max/mean deviate by {err:.2e}"
        # sigma through the variance: n2p2's one-pass formula cancels to ~eps |G|^2
        var_err = (np.abs(g.var(0, ddof=1) - ref[el][:, 3] ** 2) / scale ** 2).max()
        assert var_err <= RTOL, f"{variant['label']} {el}: SF variance deviates by {var_err:.2e}"
        # the parameter lines of n2p2's histograms (SymFnc*::parameterInfo)
        z = atomic_numbers[el]
        for i, sf in enumerate(pot.symmetry_function_list[el], start=1):
            text = (folder / f"sf.{z:03d}.{i:04d}.histo").read_text()
            expected = "".join(sfinfo_lines(sf, i, pot.settings.cutoff_type,
                                            pot.settings.cutoff_alpha))
            assert text.startswith(expected), (sf, text[:len(expected)], expected)


def test_c_loader_equals_python_reader(variant):
    """The LAMMPS plugin's loader (hdnnp_n2p2.c) parses, sorts and groups these types
    as the Python reader does: bit-identical energies and forces."""
    from hpcnnp import _core

    pot = variant["pot"]
    model = _core.load_n2p2(variant["folder"])
    for atoms in variant["structures"]:
        nl, elem = pot.neighbor_list(atoms)
        a = _core.energy_forces(pot._model, nl, elem, len(atoms))
        b = _core.energy_forces(model, nl, elem, len(atoms))
        np.testing.assert_array_equal(a["energies"], b["energies"])
        np.testing.assert_array_equal(a["forces"], b["forces"])
