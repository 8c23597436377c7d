"""Bad structures and broken potential folders give hpcnnp's own exceptions with a
message that names the culprit (atoms, element, file, line)."""

import os
import re
import shutil

import numpy as np
import pytest
from ase import Atoms
from _synthetic import random_structure, triclinic_cell, write_synthetic_potential

from hpcnnp.errors import HpcnnpError, InputFileError, PotentialError, StructureError
from hpcnnp.potential import MIN_DISTANCE, Potential


@pytest.fixture(scope="module")
def structure():
    rng = np.random.default_rng(3)
    return random_structure(rng, 8, cell=triclinic_cell(rng))


@pytest.fixture(scope="module")
def pot_dir(tmp_path_factory, structure):
    return write_synthetic_potential(tmp_path_factory.mktemp("bad_pot") / "pot", [structure])


@pytest.fixture(scope="module")
def pot(pot_dir):
    return Potential.from_n2p2(pot_dir)


@pytest.fixture
def atoms(structure):
    return structure.copy()


def _all_entry_points(pot, atoms):
    """Every public function that takes a structure."""
    return [lambda: pot.compute(atoms), lambda: pot.compute(atoms, forces=False, stress=False),
            lambda: pot.symmetry_functions(atoms),
            lambda: pot.symmetry_function_derivatives(atoms),
            lambda: pot.neighbor_list(atoms)]


def _names_atoms(message, i, j):
    """Message names atoms i and j (1-based), in either order."""
    numbers = [int(n) for n in re.findall(r"\d+", message)]
    return i in numbers and j in numbers


# ---------------------------------------------------------------------- structures

@pytest.mark.parametrize("offset", [[0.05, 0.0, 0.0], [0.0, 0.0, 0.0], [0.04, -0.05, 0.06]],
                         ids=["0.05A", "coincident", "0.09A"])
def test_atoms_too_close(pot, atoms, offset):
    atoms.positions[5] = atoms.positions[2] + offset
    for call in _all_entry_points(pot, atoms):
        with pytest.raises(StructureError) as exc:
            call()
        assert _names_atoms(str(exc.value), 3, 6), str(exc.value)
        assert "0.1" in str(exc.value)


def test_atoms_too_close_through_the_boundary(pot, atoms):
    """Atom 6 sits 0.05 Å from a periodic image of atom 3."""
    atoms.positions[5] = atoms.positions[2] + atoms.cell[0] - atoms.cell[2] + [0, 0.05, 0]
    with pytest.raises(StructureError) as exc:
        pot.compute(atoms)
    assert _names_atoms(str(exc.value), 3, 6), str(exc.value)


def test_atoms_too_close_in_a_cluster(pot):
    cluster = Atoms("LiOLiO", positions=[[0, 0, 0], [2, 0, 0], [0, 2, 0], [2.03, 0.05, 0]])
    with pytest.raises(StructureError) as exc:
        pot.compute(cluster)
    assert _names_atoms(str(exc.value), 2, 4), str(exc.value)


def test_atoms_just_above_the_limit_are_fine(pot, atoms):
    assert MIN_DISTANCE == 0.1
    atoms.positions[5] = atoms.positions[2] + [0.11, 0.0, 0.0]
    res = pot.compute(atoms)
    assert np.isfinite(res.energy) and np.isfinite(res.forces).all()


def test_unknown_element(pot, atoms):
    atoms.symbols[3] = "Fe"
    for call in _all_entry_points(pot, atoms):
        with pytest.raises(StructureError, match=r"\bFe\b"):
            call()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "cluster"])
def test_non_finite_position(pot, atoms, value, periodic):
    atoms.pbc = periodic
    atoms.positions[3, 1] = value
    for call in _all_entry_points(pot, atoms):
        with pytest.raises(StructureError, match=r"\batom 4\b"):
            call()


@pytest.mark.parametrize("kind", ["coplanar", "zero", "two equal vectors"])
def test_singular_cell(pot, atoms, kind):
    cell = atoms.get_cell().array.copy()
    if kind == "coplanar":
        cell[2] = 0.3 * cell[0] - 1.7 * cell[1]
    elif kind == "zero":
        cell[:] = 0.0
    else:
        cell[1] = cell[0]
    atoms.set_cell(cell)
    for call in _all_entry_points(pot, atoms):
        with pytest.raises(StructureError, match="singular"):
            call()


def test_non_finite_cell(pot, atoms):
    cell = atoms.get_cell().array.copy()
    cell[2, 0] = np.nan
    atoms.set_cell(cell)
    with pytest.raises(StructureError):
        pot.compute(atoms)


def test_nearly_singular_cell_self_image(pot, atoms):
    """A cell whose third vector is 1e-9 Å out of the plane of the others puts every
    atom 1e-9 Å from its own image: rejected as too close (atom i and itself)."""
    cell = atoms.get_cell().array.copy()
    cell[2] = cell[0] + cell[1] + [0.0, 0.0, 1e-9]
    atoms.set_cell(cell)
    with pytest.raises(StructureError, match="apart"):
        pot.compute(atoms)


def test_mixed_periodicity(pot, atoms):
    atoms.pbc = (True, False, True)
    with pytest.raises(StructureError, match="periodicity"):
        pot.compute(atoms)


def test_errors_are_hpcnnp_errors_and_value_errors(pot, atoms):
    atoms.symbols[0] = "Xe"
    with pytest.raises(HpcnnpError):
        pot.compute(atoms)
    with pytest.raises(ValueError):
        pot.compute(atoms)


def test_empty_and_single_atom_structures(pot):
    for empty in (Atoms(), Atoms(cell=np.eye(3) * 5.0, pbc=True)):
        res = pot.compute(empty)
        assert res.energy == 0.0 and res.forces.shape == (0, 3)
    # one atom in a cell smaller than the cutoff: it only sees its own images; every
    # lattice has inversion symmetry, so the force vanishes
    cell = [[4.5, 0.0, 0.0], [1.2, 4.3, 0.0], [-0.7, 0.9, 4.4]]
    single = pot.compute(Atoms("Li", cell=cell, pbc=True))
    assert np.isfinite(single.energy) and np.isfinite(single.stress).all()
    assert pot.neighbor_list(Atoms("Li", cell=cell, pbc=True))[0].n_pairs > 10
    assert np.abs(single.forces).max() < 1e-12


# ---------------------------------------------------------------------- potential files

def _copy(pot_dir, tmp_path):
    folder = tmp_path / "pot"
    shutil.copytree(pot_dir, folder)
    return folder


def _data_lines(path):
    """Indices (0-based) of the non-'#' lines of a file, and its lines."""
    lines = path.read_text().splitlines(keepends=True)
    return [i for i, line in enumerate(lines) if not line.startswith("#")], lines


def test_missing_weights_file(pot_dir, tmp_path):
    folder = _copy(pot_dir, tmp_path)
    os.remove(folder / "weights.008.data")
    with pytest.raises(PotentialError, match=re.escape(str(folder / "weights.008.data"))):
        Potential.from_n2p2(folder)
    # descriptor-only use still works, evaluation then is a PotentialError
    desc = Potential.from_n2p2(folder, require_weights=False)
    assert not desc.has_weights
    with pytest.raises(PotentialError, match="weights"):
        desc.compute(Atoms("LiO", positions=[[0, 0, 0], [1.8, 0, 0]]))


@pytest.mark.parametrize("change", ["one too few", "one too many"])
def test_wrong_number_of_weights(pot_dir, tmp_path, change):
    folder = _copy(pot_dir, tmp_path)
    path = folder / "weights.003.data"
    data, lines = _data_lines(path)
    if change == "one too few":
        del lines[data[-1]]
    else:
        lines.append(lines[data[-1]])
    path.write_text("".join(lines))
    with pytest.raises(InputFileError) as exc:
        Potential.from_n2p2(folder)
    assert exc.value.path == str(path)
    assert str(path) in str(exc.value)
    if change == "one too many":
        assert exc.value.line == len(lines)        # the first surplus line


def test_weights_of_another_topology(pot_dir, tmp_path):
    """input.nn changed (more neurons) but old weight files: error names a weight file."""
    folder = _copy(pot_dir, tmp_path)
    nn = folder / "input.nn"
    nn.write_text(nn.read_text().replace("global_nodes_short 6 5", "global_nodes_short 7 5"))
    with pytest.raises(InputFileError, match=r"weights\.00[38]\.data"):
        Potential.from_n2p2(folder)


def test_bad_weight_value(pot_dir, tmp_path):
    folder = _copy(pot_dir, tmp_path)
    path = folder / "weights.008.data"
    data, lines = _data_lines(path)
    lines[data[3]] = "nan" + lines[data[3]].lstrip()[lines[data[3]].lstrip().index(" "):]
    path.write_text("".join(lines))
    with pytest.raises(InputFileError) as exc:
        Potential.from_n2p2(folder)
    assert (exc.value.path, exc.value.line) == (str(path), data[3] + 1)


@pytest.mark.parametrize("change", ["row missing", "extra row"])
def test_scaling_wrong_row_count(pot_dir, tmp_path, change):
    folder = _copy(pot_dir, tmp_path)
    path = folder / "scaling.data"
    data, lines = _data_lines(path)
    if change == "row missing":
        del lines[data[7]]
    else:
        lines.append(lines[data[-1]])
    path.write_text("".join(lines))
    with pytest.raises(InputFileError) as exc:
        Potential.from_n2p2(folder)
    assert exc.value.path == str(path) and str(path) in str(exc.value)
    assert exc.value.line is not None and 1 <= exc.value.line <= len(lines)
    assert f":{exc.value.line}:" in str(exc.value)
    assert "20" in str(exc.value)                  # expected number of rows (10 + 10 SFs)
    if change == "extra row":
        assert exc.value.line == len(lines)


def test_scaling_bad_value_names_line(pot_dir, tmp_path):
    folder = _copy(pot_dir, tmp_path)
    path = folder / "scaling.data"
    data, lines = _data_lines(path)
    tokens = lines[data[4]].split()
    tokens[3] = "abc"
    lines[data[4]] = " ".join(tokens) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(InputFileError) as exc:
        Potential.from_n2p2(folder)
    assert (exc.value.path, exc.value.line) == (str(path), data[4] + 1)


def test_missing_scaling_file(pot_dir, tmp_path):
    folder = _copy(pot_dir, tmp_path)
    os.remove(folder / "scaling.data")
    with pytest.raises(PotentialError, match=re.escape(str(folder / "scaling.data"))):
        Potential.from_n2p2(folder)


def test_missing_input_nn_and_folder(pot_dir, tmp_path):
    folder = _copy(pot_dir, tmp_path)
    os.remove(folder / "input.nn")
    with pytest.raises(InputFileError, match=re.escape(str(folder / "input.nn"))):
        Potential.from_n2p2(folder)
    with pytest.raises(PotentialError, match="not found"):
        Potential.from_n2p2(tmp_path / "no_such_folder")
