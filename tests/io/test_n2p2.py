"""n2p2 file formats (hpcnnp.io.n2p2) against the real n2p2's files in refdata/."""

import io
import os
import re

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from hpcnnp.errors import InputFileError, PotentialError
from hpcnnp.io.n2p2 import (
    N2P2_ELEMENTS, Settings, SymmetryFunction, element_order, iter_data,
    parse_symfunction, read_data, read_scaling, read_settings, read_weights,
    weights_filename, write_data, write_scaling, write_settings, write_weights,
)

CASES = ["H2O_RPBE-D3", "Cu2S_PBE", "synth5_A"]
ATOMS_PER_STRUCTURE = {
    "H2O_RPBE-D3/input.data": [48, 96],
    "Cu2S_PBE/input.data": [144, 144],
    "synth5_A/input.data": [64, 216, 44],
    "synth5_A/big1728/input.data": [1728],
}
SETTINGS_FILES = ["H2O_RPBE-D3/potential/input.nn", "Cu2S_PBE/potential/input.nn",
                  "synth5_A/potential/input.nn", "H2O_RPBE-D3/nnp-dataset/input.nn.used",
                  "Cu2S_PBE/nnp-dataset/input.nn.used", "synth5_A/nnp-dataset/input.nn.used",
                  "nnp-train-sample/Cu2S_PBE/input.nn",
                  "nnp-train-sample/synth5_A_1epoch/input.nn"]
# elements (index order), SFs per element, hidden layers, activations, scaling
EXPECTED_SETTINGS = {
    "H2O_RPBE-D3": (["H", "O"], [27, 30], [25, 25], ["t", "t", "l"], "scalecenter", 0.0, 1.0),
    "Cu2S_PBE": (["S", "Cu"], [72, 66], [25, 25], ["p", "p", "l"], "scalesigma", 0.0, 1.0),
    "synth5_A": (["Li", "O", "Co", "Zr", "La"], [225] * 5, [20, 20], ["t", "t", "l"],
                 "scalecenter", -1.0, 1.0),
    "nnp-train-sample/Cu2S_PBE": (["S", "Cu"], [90, 89], [15, 15], ["p", "p", "l"],
                                  "scalesigma", 0.0, 1.0),
    "nnp-train-sample/synth5_A_1epoch": (["Li", "O", "Co", "Zr", "La"], [225] * 5,
                                         [20, 20], ["t", "t", "l"], "scalecenter", -1.0, 1.0),
}
NORMALIZATION = {
    "H2O_RPBE-D3": (-2.5521343547039809E+01, 2.4265748255366972E+02, 5.8038448995319847E+00),
    "Cu2S_PBE": (-3.8640662064628053E+00, 7.3890846653659121E+00, 6.1376931796181502E+00),
    "synth5_A": None,
    "nnp-train-sample/Cu2S_PBE": (-3.9745355631944457E+00, 1.6464963191344094E+02,
                                  2.7000746146526534E+01),
    "nnp-train-sample/synth5_A_1epoch": None,
}


def _case_of(rel):
    return rel.rsplit("/", 1)[0] if rel.startswith("nnp-train-sample") else rel.split("/")[0]


def _data_files(refdata):
    return sorted(p for p in refdata.glob("**/*.data") if p.parent.name != "potential")


def assert_same_structures(a_list, b_list):
    assert len(a_list) == len(b_list)
    for a, b in zip(a_list, b_list):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.cell.array, b.cell.array)
        assert a.pbc.tolist() == b.pbc.tolist()
        assert np.array_equal(a.get_initial_charges(), b.get_initial_charges())
        assert a.calc.results["energy"] == b.calc.results["energy"]
        assert np.array_equal(a.calc.results["forces"], b.calc.results["forces"])
        for key in ("comment", "set"):
            assert a.info.get(key) == b.info.get(key)
        assert a.info.get("charge", 0.0) == b.info.get("charge", 0.0)


def expect_error(path, line, func, *args, **kwargs):
    """func(*args) raises InputFileError naming *path* and *line*."""
    with pytest.raises(InputFileError) as info:
        result = func(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    text = str(info.value)
    assert os.path.basename(str(path)) in text
    assert info.value.line == line, text
    if line is not None:
        assert f"{path}:{line}:" in text
    assert "\n" not in text
    return text


# ---------------------------------------------------------------------------------------
# input.data
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rel", sorted(ATOMS_PER_STRUCTURE))
def test_read_refdata_input(refdata, rel):
    path = refdata / rel
    images = read_data(path)
    assert [len(a) for a in images] == ATOMS_PER_STRUCTURE[rel]
    text = path.read_text().splitlines()
    begins = [i + 1 for i, line in enumerate(text) if line.split()[0] == "begin"]
    for k, atoms in enumerate(images):
        assert atoms.info["n2p2_index"] == k
        assert atoms.info["n2p2_line"] == begins[k]
        assert atoms.info["charge"] == 0.0
        assert "set" not in atoms.info
        # first atom line and energy line of the block, verbatim
        block = text[begins[k]:]
        first_atom = next(line.split() for line in block if line.split()[0] == "atom")
        energy = next(float(line.split()[1]) for line in block if line.split()[0] == "energy")
        assert atoms.positions[0].tolist() == [float(v) for v in first_atom[1:4]]
        assert atoms.get_chemical_symbols()[0] == first_atom[4]
        assert atoms.get_initial_charges()[0] == float(first_atom[5])
        assert atoms.get_forces()[0].tolist() == [float(v) for v in first_atom[7:10]]
        assert atoms.get_potential_energy() == energy
        lattice = [line.split()[1:] for line in block[:4] if line.split()[0] == "lattice"]
        if lattice:
            assert atoms.pbc.all()
            assert atoms.cell.array.tolist() == [[float(v) for v in row] for row in lattice]
        else:
            assert not atoms.pbc.any() and not atoms.cell.array.any()
    if rel == "synth5_A/input.data":
        assert images[2].info["comment"] == "synthetic non-periodic cluster 44 atoms"
        assert not images[2].pbc.any()
    if rel == "H2O_RPBE-D3/input.data":   # leading blank before 'begin'/'end' is fine
        assert images[0].info["comment"] == "written by RuNNerDecom"
        assert images[0].get_chemical_symbols()[:3] == ["O", "H", "H"]


def test_iter_data_streams_and_checks_elements(refdata):
    path = refdata / "synth5_A/input.data"
    stream = iter_data(path, elements=["Li", "La", "Zr", "O", "Co"])
    first = next(stream)
    assert len(first) == 64
    assert sum(1 for _ in stream) == 2
    with pytest.raises(InputFileError, match="not one of the potential's elements"):
        list(iter_data(path, elements=["Li", "O"]))


@pytest.mark.parametrize("index, expected", [
    (None, [0, 1, 2]), (0, [0]), (2, [2]), (-1, [2]), (slice(1, None), [1, 2]),
    (slice(None, None, 2), [0, 2]), (slice(-2, None), [1, 2])])
def test_read_data_index(refdata, index, expected):
    images = read_data(refdata / "synth5_A/input.data", index=index)
    assert [a.info["n2p2_index"] for a in images] == expected


def test_read_data_index_out_of_range(refdata):
    with pytest.raises(IndexError):
        read_data(refdata / "synth5_A/input.data", index=3)
    with pytest.raises(IndexError):
        read_data(refdata / "synth5_A/input.data", index=-4)


def test_roundtrip_exact(refdata, tmp_path):
    for path in _data_files(refdata):
        images = read_data(path)
        out = tmp_path / "out.data"
        write_data(out, images)
        assert_same_structures(read_data(out), images)


def test_write_reproduces_n2p2_output_bytes(refdata, tmp_path):
    files = sorted(refdata.glob("*/nnp-dataset/output.data")) + sorted(
        refdata.glob("*/nnp-predict/*/output.data"))
    assert len(files) == 10
    for path in files:
        out = tmp_path / "out.data"
        write_data(out, read_data(path))
        assert out.read_bytes() == path.read_bytes(), path
        buffer = io.StringIO()
        write_data(buffer, read_data(path))
        assert buffer.getvalue() == path.read_text()


def test_write_data_conventions(tmp_path):
    plain = Atoms("LiO", positions=[[0, 0, 0], [1.5, 0, 0]])          # no calculator
    tagged = Atoms("H2", positions=[[-1, 0, 0], [20, 0, 0]], cell=np.eye(3) * 5, pbc=True)
    tagged.set_initial_charges([0.25, -0.25])
    tagged.calc = SinglePointCalculator(tagged, energy=-1.5, forces=[[1, 2, 3], [-1, -2, -3]])
    tagged.info.update({"set": "test", "comment": "  two  spaces "})
    path = tmp_path / "w.data"
    write_data(path, plain)
    write_data(path, [tagged], append=True)
    text = path.read_text()
    assert text.startswith("begin\natom ")          # no comment line without a comment
    assert "begin set=test\ncomment   two  spaces \nlattice" in text
    back = read_data(path)
    assert back[0].get_potential_energy() == 0.0 and not back[0].get_forces().any()
    assert back[0].info["charge"] == 0.0 and "comment" not in back[0].info
    assert back[1].info["set"] == "test" and back[1].info["comment"] == "  two  spaces "
    assert back[1].positions[:, 0].tolist() == [-1.0, 20.0]           # not wrapped
    assert_same_structures(back[1:], [tagged])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]   # no temp files
    with pytest.raises(ValueError):
        write_data(tmp_path / "x.data", Atoms("H", pbc=[True, False, False], cell=np.eye(3)))


def test_set_tags_read(tmp_path):
    path = tmp_path / "tags.data"
    path.write_text("begin set=train\natom 0 0 0 H 0 0 0 0 0\nend\n"
                    "begin set=test\natom 0 0 0 H 0 0 0 0 0\nend\n"
                    "begin\natom 0 0 0 H 0 0 0 0 0\nenergy 2.5\nend\n")
    images = read_data(path)
    assert [a.info.get("set") for a in images] == ["train", "test", None]
    assert images[2].get_potential_energy() == 2.5


GOOD_BLOCK = ["begin", "comment ok", "lattice 5 0 0", "lattice 0 5 0", "lattice 0 0 5",
              "atom 0.0 0.0 0.0 Li 0.0 0.0 0.1 0.2 0.3",
              "atom 1.0 1.0 1.0 O 0.0 0.0 -0.1 -0.2 -0.3",
              "energy -3.0", "charge 0.0", "end"]


def _defect(lines, index, new):
    """GOOD_BLOCK twice, the second copy edited: line *index* of it replaced by *new*
    (a list: inserted lines; None: deleted).  Returns lines and the 1-based line of the
    edited line in the file."""
    second = list(lines)
    if new is None:
        del second[index]
    else:
        second[index:index + 1] = new
    return lines + second, len(lines) + index + 1


@pytest.mark.parametrize("index, new, line_offset, message", [
    (5, ["atom 0.0 0.0 0.0 Li 0.0 0.0 0.1 0.2"], 0, "9 fields"),
    (5, ["atom 0.0 0.0 0.0 Li 0.0 0.0 0.1 0.2 0.3 0.4"], 0, "11 fields"),
    (6, ["atom 1.0 1.0 1.0 O 0.0 0.0 -0.1 nan -0.3"], 0, "not a finite number"),
    (6, ["atom 1.0 1.0 1.0 O 0.0 0.0 -0.1 -0.2 inf"], 0, "not a finite number"),
    (6, ["atom 1.0 1.0 1.0 O 0.0 abc -0.1 -0.2 -0.3"], 0, "not a finite number"),
    (6, ["atom 1.0 1.0 1.0 O 0.0 0.0 -0.1 1e999 -0.3"], 0, "overflows"),
    (6, ["atom 1.0 1.0 1.0 Xx 0.0 0.0 -0.1 -0.2 -0.3"], 0, "unknown element 'Xx'"),
    (6, ["atom 1.0 1.0 1.0 o 0.0 0.0 -0.1 -0.2 -0.3"], 0, "unknown element 'o'"),
    (6, ["atom 1.0 1.0 1.0 Oxy 0.0 0.0 -0.1 -0.2 -0.3"], 0, "unknown element 'Oxy'"),
    (2, ["lattice 5 0 nan"], 0, "not a finite number"),
    (2, ["lattice 5 0"], 0, "3 numbers"),
    (7, ["energy"], 0, "needs one number"),
    (7, ["energy 1.0D+00"], 0, "not a finite number"),
    (8, ["charge 1.0"], 0, "neutral"),
    (8, ["charge 0.0", "charge 0.0"], 1, "second 'charge'"),
    (7, ["forces 0 0 0"], 0, "unknown keyword 'forces'"),
    (6, [""], 0, "blank line"),
    (6, ["   "], 0, "blank line"),
    (6, ["# a comment"], 0, "comment line"),
    (0, ["begin set=validation"], 0, "only set=train or set=test"),
    (0, ["begin", "begin"], 1, "missing 'end'"),
    (9, ["end 1"], 0, "takes no argument"),
    (0, ["", "begin"], 0, "blank line"),                 # blank line between blocks
    (2, None, 6, "strange number of box vectors: 2"),   # reported on 'end'
])
def test_bad_input_data(tmp_path, index, new, line_offset, message):
    lines, line = _defect(GOOD_BLOCK, index, new)
    path = tmp_path / "input.data"
    path.write_text("\n".join(lines) + "\n")
    text = expect_error(path, line + line_offset, read_data, path)
    assert message in text


def test_bad_input_data_structure_errors(tmp_path):
    path = tmp_path / "input.data"
    cases = [
        (GOOD_BLOCK[:-1], 9, "missing 'end'"),                        # truncated
        (GOOD_BLOCK[:3] + GOOD_BLOCK[5:], 8, "strange number of box vectors: 1"),
        (["end"] + GOOD_BLOCK, 1, "outside a begin"),
        (GOOD_BLOCK + ["atom 0 0 0 H 0 0 0 0 0"], 11, "outside a begin"),
        (["begin", "atom 0 0 0 H 0 0 0 0 0", "charge 1.0", "end"], None, None),  # cluster
    ]
    for lines, line, message in cases:
        path.write_text("\n".join(lines) + "\n")
        if line is None:
            assert read_data(path)[0].info["charge"] == 1.0   # clusters may be charged
            continue
        assert message in expect_error(path, line, read_data, path)
    # element allowed by n2p2 but not by the potential
    path.write_text("\n".join(GOOD_BLOCK) + "\n")
    text = expect_error(path, 7, read_data, path, elements=["Li", "H"])
    assert "not one of the potential's elements (H Li)" in text
    expect_error(tmp_path / "missing.data", None, read_data, tmp_path / "missing.data")


def test_atom_line_count_check_is_per_line(tmp_path):
    # 9 + 11 fields add up to 2 x 10: must still be caught on the right line
    lines = GOOD_BLOCK[:5] + ["atom 0 0 0 Li 0 0 0 0", "atom atom 1 1 1 O 0 0 0 0 0"] + \
        GOOD_BLOCK[7:]
    path = tmp_path / "input.data"
    path.write_text("\n".join(lines) + "\n")
    expect_error(path, 6, read_data, path)


# ---------------------------------------------------------------------------------------
# input.nn
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rel", SETTINGS_FILES)
def test_read_refdata_settings(refdata, rel):
    s = read_settings(refdata / rel)
    elements, n_sf, hidden, acts, scaling, smin, smax = EXPECTED_SETTINGS[_case_of(rel)]
    assert s.elements == elements
    assert [s.n_sf(e) for e in elements] == n_sf
    assert all(s.hidden_nodes[e] == hidden and s.activations[e] == acts for e in elements)
    assert (s.scaling_type, s.scale_min, s.scale_max) == (scaling, smin, smax)
    assert s.normalization == NORMALIZATION[_case_of(rel)]
    assert s.warnings == []
    assert s.get_flag("use_short_forces")
    for e in elements:
        assert s.layer_sizes(e) == [s.n_sf(e)] + hidden + [1]
    if "synth5_A" in rel:
        assert s.atom_energy == {"Li": -0.19, "O": -0.44, "Co": -1.85, "Zr": -1.42,
                                 "La": -0.55}
        assert (s.cutoff_type, s.cutoff_alpha) == (6, 0.0)
        assert s.n_weights("Li") == 4961
    else:
        assert set(s.atom_energy.values()) == {0.0}
    if rel.startswith("H2O"):
        assert (s.cutoff_type, s.cutoff_alpha) == (2, 0.0)


_SFORDER_LINE = re.compile(r"(\d+) (\d+) symfunction_short (.*)")


@pytest.mark.parametrize("case", CASES)
def test_sf_order_matches_n2p2(refdata, case):
    s = read_settings(refdata / case / "potential/input.nn")
    for element in s.elements:
        rows = [_SFORDER_LINE.match(line).groups() for line in
                (refdata / case / "dumps" / f"sforder.{element}").read_text().splitlines()
                if not line.startswith("#")]
        sfs = s.symmetry_functions[element]
        assert [int(r[0]) for r in rows] == list(range(1, len(sfs) + 1))
        assert [sf.line for sf in sfs] == [int(r[1]) for r in rows]
        for sf, (_, _, params) in zip(sfs, rows):
            # n2p2's own printout of the parameters of the sorted SF
            ref = parse_symfunction(params, s.element_index, "sforder", 0)
            assert ref.sftype == sf.sftype and ref.central == sf.central == element
            assert (ref.e1, ref.e2) == (sf.e1, sf.e2)
            for name in ("eta", "rs", "rc", "lam", "zeta"):
                a, b = getattr(ref, name), getattr(sf, name)
                assert (a is None and b is None) or a == pytest.approx(b, rel=1e-8)


def test_settings_keyword_access(tmp_path):
    text = """# comment line
number_of_elements 2   # two
elements   O  H        ! n2p2 also cuts at '!'
cutoff_type 1 0.5
symfunction H 2 H 0.1 0.0 6.0
symfunction H 3 O H 0.1 1 2 6.0
symfunction O 9 H H 0.1 -1 2 6.0 0.5
symfunction O 2 O 0.1 0.0 6.0
global_hidden_layers_short 1
global_nodes_short 5
global_activation_short s l
use_short_forces 0
short_energy_fraction 0.5
strange_keyword 1
"""
    s = Settings.from_text(text, "x/input.nn")
    s.validate()
    assert s.elements == ["H", "O"]
    assert s.get("elements") == "O H"
    assert s.get("number_of_elements") == "2" and s.get_int("number_of_elements") == 2
    assert s.get_flag("use_short_forces") and s.get("use_short_forces") == "0"
    assert not s.get_flag("normalize_nodes") and s.get("normalize_nodes") is None
    assert "energy_fraction" in s and "short_energy_fraction" in s
    assert s.get_float("energy_fraction") == 0.5 and s.line_of("energy_fraction") == 13
    assert "symfunction_short" in s and "symfunction" in s
    assert [line for _, line in s.get_all("symfunction_short")] == [5, 6, 7, 8]
    assert s.get_float("epochs", 7.0) == 7.0 and s.line_of("epochs") is None
    assert s.warnings == ["x/input.nn:14: unknown keyword 'strange_keyword' (ignored)"]
    assert (s.cutoff_type, s.cutoff_alpha) == (1, 0.5)
    assert s.scaling_type == "none" and (s.scale_min, s.scale_max) == (0.0, 1.0)
    assert s.normalization is None
    angular = s.symmetry_functions["H"][1]
    assert (angular.sftype, angular.e1, angular.e2) == (3, "H", "O")   # swapped to H O
    assert angular.rs == 0.0 and angular.lam == 1.0 and angular.zeta == 2.0
    wide = s.symmetry_functions["O"][1]
    assert (wide.sftype, wide.rs, wide.e2) == (9, 0.5, "H")
    assert s.layer_sizes("O") == [2, 5, 1] and s.n_weights("O") == 2 * 5 + 5 + 5 + 1


@pytest.mark.parametrize("flags, expected", [
    ("", "none"), ("scale_symmetry_functions", "scale"),
    ("center_symmetry_functions", "center"),
    ("scale_symmetry_functions\ncenter_symmetry_functions", "scalecenter"),
    ("scale_symmetry_functions_sigma", "scalesigma"),
    ("scale_symmetry_functions\nscale_symmetry_functions_sigma", "scale"),
    ("center_symmetry_functions\nscale_symmetry_functions_sigma", "center"),
])
def test_scaling_type(flags, expected):
    s = Settings.from_text(f"number_of_elements 1\nelements H\n{flags}\n")
    assert s.scaling_type == expected


def test_sort_key_order():
    index = {"H": 0, "O": 1}
    a = parse_symfunction("O 3 O H 0.1 1 1 6.0", index, "p", 1)
    b = parse_symfunction("O 3 H H 0.1 -1 1 6.0", index, "p", 2)
    c = parse_symfunction("O 2 O 0.5 0.0 6.0", index, "p", 3)
    d = parse_symfunction("O 2 H 0.1 1.0 6.0", index, "p", 4)
    e = parse_symfunction("O 2 H 0.1 0.0 5.0", index, "p", 5)
    order = sorted([a, b, c, d, e], key=lambda sf: sf.sort_key(index, 6, 0.0))
    # type first, then r_c, eta, r_s (, zeta, lambda), then elements
    assert [sf.line for sf in order] == [5, 4, 3, 2, 1]
    assert (a.e1, a.e2) == ("H", "O")


def test_parse_other_sf_types():
    index = {"H": 0, "O": 1}
    sf = parse_symfunction("H 12 0.1 0.2 6.0", index, "p", 1)
    assert (sf.e1, sf.eta, sf.rs, sf.rc) == (None, 0.1, 0.2, 6.0)
    sf = parse_symfunction("H 13 0.1 0.2 -1 4 6.0", index, "p", 1)
    assert (sf.eta, sf.rs, sf.lam, sf.zeta, sf.rc) == (0.1, 0.2, -1.0, 4.0, 6.0)
    sf = parse_symfunction("H 20 O 1.0 6.0 p2", index, "p", 1)
    assert (sf.e1, sf.rl, sf.rc, sf.subtype) == ("O", 1.0, 6.0, "p2")
    sf = parse_symfunction("H 21 O H 1.0 6.0 30 150 p2a", index, "p", 1)
    assert (sf.e1, sf.e2, sf.angle_left, sf.angle_right) == ("H", "O", 30.0, 150.0)
    sf = parse_symfunction("H 25 1.0 6.0 30 150 e", index, "p", 1)
    assert (sf.e1, sf.rl, sf.subtype) == (None, 1.0, "e")
    assert isinstance(sf, SymmetryFunction) and sf.is_angular


SETTINGS_OK = """number_of_elements 2
elements H O
cutoff_type 6
symfunction_short H 2 H 0.1 0.0 6.0
symfunction_short O 3 H O 0.1 1 2 6.0
global_hidden_layers_short 2
global_nodes_short 10 10
global_activation_short t t l
"""


@pytest.mark.parametrize("extra, line, message", [
    ("cutoff_type 2", 9, "repeated (first at line 3)"),
    ("symfunction H 2 O 0.1 0.0 6.0", 9, "another spelling"),
    ("energy_fraction 1\nshort_energy_fraction 1", 10, "another spelling"),
    ("number_of_elements 2", 9, "repeated"),
    ("symfunction_short O 28 H 0.1 0.0 6.0", 9, "unknown symmetry function type 28"),
    ("symfunction_short O 3 H Li 0.1 1 2 6.0", 9, "'Li' is not listed in 'elements'"),
    ("symfunction_short Li 2 H 0.1 0.0 6.0", 9, "'Li' is not listed in 'elements'"),
    ("symfunction_short O 3 H O 0.1 1 6.0", 9, "takes 'Ec 3 E1 E2 eta lambda zeta rc [rs]'"),
    ("symfunction_short O 2 H 0.1 0.0 abc", 9, "not a finite number"),
    ("symfunction_short O 2 H 0.1 0.0 -6", 9, "must be positive"),
    ("scale_min_short abc", 9, "not a finite number"),
    ("scale_max_short", 9, "needs a value"),
    ("atom_energy Li -1", 9, "not listed"),
    ("atom_energy H -1\natom_energy H -2", 10, "given twice"),
    ("mean_energy 1.0\nconv_energy 2.0", 9, "missing: conv_length"),
    ("element_nodes_short O 10", 9, "1 hidden layer sizes for O, but it has 2"),
    ("element_hidden_layers_short O 3\nelement_nodes_short O 5 5 5", 9,
     "3 activation letters for O, but it needs 4"),
])
def test_bad_settings(tmp_path, extra, line, message):
    path = tmp_path / "input.nn"
    path.write_text(SETTINGS_OK + extra + "\n")
    assert message in expect_error(path, line, read_settings, path)


@pytest.mark.parametrize("old, new, line, message", [
    ("number_of_elements 2", "number_of_elements 3", 1, "lists 2"),
    ("number_of_elements 2", "number_of_elements two", 1, "not an integer"),
    ("elements H O", "elements H Xq", 2, "unknown element symbol 'Xq'"),
    ("elements H O", "elements H O H", 2, "listed twice"),
    ("cutoff_type 6", "cutoff_type 6 1.0", 3, "0 <= alpha < 1"),
    ("cutoff_type 6", "cutoff_type 9", 3, "unknown cutoff type 9"),
    ("global_nodes_short 10 10", "global_nodes_short 10", 7, "gives 1 layer sizes"),
    ("global_activation_short t t l", "global_activation_short t l", 8, "needs 3 letters"),
    ("global_activation_short t t l", "global_activation_short t x l", 8,
     "unknown activation function 'x'"),
    ("symfunction_short O 3 H O 0.1 1 2 6.0", "", 2, "O has no symmetry function"),
    ("cutoff_type 6", "", None, "'cutoff_type' missing"),
])
def test_bad_settings_edits(tmp_path, old, new, line, message):
    path = tmp_path / "input.nn"
    path.write_text(SETTINGS_OK.replace(old, new))
    assert message in expect_error(path, line, read_settings, path)


def test_unknown_keyword_is_warning(tmp_path):
    path = tmp_path / "input.nn"
    path.write_text(SETTINGS_OK + "no_such_keyword 3\nno_such_keyword 4\n")
    s = read_settings(path)
    assert len(s.warnings) == 2 and f"{path}:9:" in s.warnings[0]
    assert s.get_all("no_such_keyword") == [("3", 9), ("4", 10)]


def test_element_topology_overrides(tmp_path):
    path = tmp_path / "input.nn"
    path.write_text(SETTINGS_OK + "element_hidden_layers_short O 3\n"
                    "element_nodes_short O 7 8 9\nelement_activation_short O p s t l\n"
                    "element_nodes_short H 4 5\nnormalize_nodes\n")
    s = read_settings(path)
    assert s.hidden_nodes == {"H": [4, 5], "O": [7, 8, 9]}     # all hidden layers set
    assert s.activations == {"H": ["t", "t", "l"], "O": ["p", "s", "t", "l"]}
    assert s.layer_sizes("O") == [1, 7, 8, 9, 1]
    assert s.n_weights("O") == 1 * 7 + 7 + 7 * 8 + 8 + 8 * 9 + 9 + 9 + 1
    assert s.normalize_nodes


def test_write_settings(tmp_path, refdata):
    src = refdata / "H2O_RPBE-D3/potential/input.nn"
    s = read_settings(src)
    out = tmp_path / "input.nn"
    write_settings(out, s)
    assert out.read_bytes() == src.read_bytes()            # unchanged without updates
    write_settings(out, s, {"mean_energy": "%24.16E" % 1.5, "conv_length": None,
                            "short_energy_fraction": "0.25", "normalize_nodes": ""},
                   comment="nnp-train")
    lines = out.read_text().splitlines()
    original = src.read_text().splitlines()
    assert len(lines) == len(original) + 2
    assert lines[12] == "mean_energy   1.5000000000000000E+00 # nnp-train"
    assert lines[14].startswith("#conv_length")
    assert lines[-2:] == ["short_energy_fraction 0.25 # nnp-train",
                          "normalize_nodes # nnp-train"]
    assert [a for a, b in zip(lines, original) if a != b] == [lines[12], lines[14]]
    back = read_settings(out, validate=False)
    assert back.get_float("mean_energy") == 1.5 and "conv_length" not in back
    assert back.get_float("energy_fraction") == 0.25 and back.normalize_nodes
    # alias update replaces the line written with the other spelling
    write_settings(out, back, {"energy_fraction": "0.5"})
    again = read_settings(out, validate=False)
    assert again.get_all("energy_fraction") == [("0.5", len(lines) - 1)]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    with pytest.raises(ValueError):
        write_settings(out, again, {"atom_energy": "H 1.0"})


# ---------------------------------------------------------------------------------------
# scaling.data, weights
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_scaling_roundtrip(refdata, tmp_path, case):
    s = read_settings(refdata / case / "potential/input.nn")
    path = refdata / case / "potential/scaling.data"
    n_sf = {e: s.n_sf(e) for e in s.elements}
    stats = read_scaling(path, n_sf, s.elements)
    assert [stats[e].shape for e in s.elements] == [(n_sf[e], 4) for e in s.elements]
    last = path.read_text().splitlines()[-1].split()
    assert stats[s.elements[-1]][-1].tolist() == [float(v) for v in last[2:]]
    out = tmp_path / "scaling.data"
    write_scaling(out, s.elements, stats)
    assert out.read_bytes() == path.read_bytes()          # header and rows, byte for byte


def test_scaling_errors(tmp_path):
    n_sf, elements = {"H": 2, "O": 1}, ["H", "O"]
    rows = ["         1          1   1.0E+00   2.0E+00   1.5E+00   0.1E+00",
            "         1          2   1.0E+00   2.0E+00   1.5E+00   0.1E+00",
            "         2          1   1.0E+00   2.0E+00   1.5E+00"]
    path = tmp_path / "scaling.data"
    path.write_text("# header\n" + "\n".join(rows) + "\n")
    stats = read_scaling(path, n_sf, elements)
    assert stats["O"].tolist() == [[1.0, 2.0, 1.5, 0.0]]          # 5 columns: sigma 0
    path.write_text("# header\n" + "\n".join(rows[:2]) + "\n")
    assert "2 data rows, expected 3" in expect_error(path, 3, read_scaling, path, n_sf,
                                                     elements)
    path.write_text("# header\n" + "\n".join(rows + rows[:1]) + "\n")
    assert "expected 3" in expect_error(path, 5, read_scaling, path, n_sf, elements)
    path.write_text("# header\n" + rows[0] + "\n\n" + "\n".join(rows[1:]) + "\n")
    assert "empty line" in expect_error(path, 3, read_scaling, path, n_sf, elements)
    path.write_text("# header\n" + "\n".join(rows).replace("1.5E+00", "x") + "\n")
    expect_error(path, 2, read_scaling, path, n_sf, elements)
    path.write_text("# header\n" + "\n".join(rows[:1] + rows) + "\n")   # 4 rows
    expect_error(path, 5, read_scaling, path, n_sf, elements)
    path.write_text("# header\n" + "\n".join([rows[0], rows[2], rows[2]]) + "\n")
    assert "expected element 1 (H) SF 2" in expect_error(path, 3, read_scaling, path,
                                                         n_sf, elements)


def _weight_cases(refdata):
    for case in CASES:
        s = read_settings(refdata / case / "potential/input.nn")
        for e in s.elements:
            yield s, e, refdata / case / "potential" / weights_filename(e)
    s = read_settings(refdata / "nnp-train-sample/Cu2S_PBE/input.nn")
    for e in s.elements:
        yield s, e, refdata / "nnp-train-sample/Cu2S_PBE" / (
            weights_filename(e)[:-5] + ".000010.out")


def test_weights_roundtrip(refdata, tmp_path):
    count = 0
    for s, element, path in _weight_cases(refdata):
        weights = read_weights(path, s.n_weights(element))
        rows = [line.split() for line in path.read_text().splitlines()
                if not line.startswith("#")]
        assert weights.tolist() == [float(r[0]) for r in rows]
        out = tmp_path / "weights.data"
        write_weights(out, weights, s.layer_sizes(element))
        assert out.read_bytes() == path.read_bytes(), path      # values, a/b, indices
        count += 1
    assert count == 2 + 2 + 5 + 2
    assert weights_filename("La") == "weights.057.data"


def test_weights_errors(refdata, tmp_path):
    path = refdata / "H2O_RPBE-D3/potential/weights.001.data"
    n = read_settings(refdata / "H2O_RPBE-D3/potential/input.nn").n_weights("H")
    n_lines = len(path.read_text().splitlines())
    assert "1376 connection values, the network needs 1377" in expect_error(
        path, n_lines, read_weights, path, n + 1)
    assert "more than the 1375" in expect_error(path, n_lines, read_weights, path, n - 1)
    expect_error(tmp_path / "weights.001.data", None, read_weights,
                 tmp_path / "weights.001.data", n)
    bad = tmp_path / "bad.data"
    bad.write_text("# header\n 1.0 a 1\n nan a 2\n")
    assert "not a finite number" in expect_error(bad, 3, read_weights, bad, 2)
    bad.write_text("# header\n 1.0 a 1\n\n 2.0 a 2\n")
    assert "empty line" in expect_error(bad, 3, read_weights, bad, 2)
    with pytest.raises(PotentialError):
        write_weights(tmp_path / "w.data", np.zeros(5), [2, 2, 1])


def test_element_order():
    assert element_order(["Li", "La", "Zr", "O", "Co"]) == ["Li", "O", "Co", "Zr", "La"]
    assert N2P2_ELEMENTS[0] == "H" and N2P2_ELEMENTS[-1] == "No" and len(N2P2_ELEMENTS) == 102
    with pytest.raises(InputFileError, match="f.nn:3: unknown element symbol 'Lr'"):
        element_order(["H", "Lr"], "f.nn", 3)
    with pytest.raises(InputFileError, match="listed twice"):
        element_order(["H", "H"])


# ------------------------------------------------------- charged periodic structures

def _charged_lco():
    """LiCoO2-like periodic cell with formal charges and two Li removed (charge -2)."""
    from ase import Atoms

    rng = np.random.default_rng(4)
    symbols = ["Li"] * 2 + ["Co"] * 4 + ["O"] * 8
    atoms = Atoms(symbols, positions=rng.uniform(0, 6, (14, 3)), cell=np.eye(3) * 6.0,
                  pbc=True)
    atoms.set_initial_charges([{"Li": 1.0, "Co": 3.0, "O": -2.0}[s] for s in symbols])
    atoms.info["comment"] = "LCO minus 2 Li"
    return atoms


def test_write_data_refuses_charged_periodic(tmp_path):
    from hpcnnp.errors import StructureError

    good = _charged_lco()
    good.set_initial_charges(None)
    bad = _charged_lco()
    path = tmp_path / "input.data"
    with pytest.raises(StructureError, match=r"structure 1 \(Co4Li2O8, comment 'LCO minus "
                                             r"2 Li'\) is periodic with total charge -2\.0.*"
                                             r"neutralize=True"):
        write_data(path, [good, bad])
    assert not path.exists()                       # nothing written
    write_data(path, [good])
    before = path.read_text()
    with pytest.raises(StructureError):
        write_data(path, [good, bad], append=True)
    assert path.read_text() == before               # nothing appended either


def test_write_data_neutralize_round_trip(tmp_path):
    """neutralize=True writes what read_data (and n2p2) read: total charge 0, atomic
    charges shifted uniformly; charged clusters are written unchanged."""
    from ase import Atoms

    atoms = _charged_lco()
    q0 = atoms.get_initial_charges()
    cluster = Atoms("LiO", positions=[[0, 0, 0], [1.8, 0, 0]])
    cluster.set_initial_charges([1.0, 0.0])
    path = tmp_path / "input.data"
    write_data(path, [atoms, cluster], neutralize=True)
    back = read_data(path)
    assert back[0].info["charge"] == 0.0
    q = back[0].get_initial_charges()
    assert abs(q.sum()) < 1e-12
    np.testing.assert_allclose(q - q0, np.full(len(q), 2.0 / len(q)), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(back[0].positions, atoms.positions)
    assert back[1].info["charge"] == 1.0                      # clusters may be charged
    np.testing.assert_array_equal(back[1].get_initial_charges(), [1.0, 0.0])
    # a second round trip changes nothing
    write_data(tmp_path / "again.data", back, neutralize=True)
    assert (tmp_path / "again.data").read_text() == path.read_text()


# ------------------------------------------------------------------ kind of potential

_MINIMAL_NN = ("number_of_elements 1\nelements H\ncutoff_type 1\n"
               "symfunction_short H 2 H 0.1 0.0 5.0\nglobal_hidden_layers_short 1\n"
               "global_nodes_short 2\nglobal_activation_short t l\n")


@pytest.mark.parametrize("line,ok,kind", [
    ("", True, None), ("nnp_type 2G-HDNNP", True, None), ("nnp_generation 2", True, None),
    ("nnp_type 4G-HDNNP", False, "4G-HDNNP"), ("nnp_generation 4", False, "4G-HDNNP"),
    ("nnp_type_gen 4", False, "4G-HDNNP"), ("nnp_type Q-HDNNP", False, "Q-HDNNP"),
    ("nnp_type 10", False, "Q-HDNNP"), ("nnp_type 3", False, "unknown kind"),
])
def test_nnp_type_refusal_first(tmp_path, line, ok, kind):
    """A potential kind hpcnnp does not evaluate is refused from input.nn, naming the
    keyword and its line, before any other check (here: a missing keyword)."""
    text = line + "\n" + _MINIMAL_NN if line else _MINIMAL_NN
    path = tmp_path / "input.nn"
    if ok:
        path.write_text(text)
        assert read_settings(path).nnp_type == "2G-HDNNP"
        return
    path.write_text(text.replace("cutoff_type 1\n", ""))     # a later problem
    with pytest.raises(InputFileError) as exc:
        read_settings(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:1: {line}: ")
    assert kind in msg
    if kind != "unknown kind":
        assert "charge" in msg and "2G-HDNNPs (short-range networks) only" in msg
