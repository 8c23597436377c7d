"""The SF type table (hpcnnp.descriptors.sftypes) is the one description of the SF types:
the C core's list and line layouts, the n2p2 reader and sfgen agree with it."""

import dataclasses

import numpy as np
import pytest

from hpcnnp import _core
from hpcnnp.descriptors import sfgen, sftypes
from hpcnnp.errors import InputFileError, PotentialError
from hpcnnp.io.n2p2 import Settings, parse_symfunction

ELEMENTS = {"H": 0, "C": 1, "O": 2}
# a value for every field name (elements out of order, so that e1/e2 get swapped)
SAMPLE = {"e1": "O", "e2": "C", "eta": "0.5", "rs": "1.25", "rc": "6.5", "lambda": "-1",
          "zeta": "4.5", "rl": "-2.0", "angle_left": "30.0", "angle_right": "150.0",
          "subtype": "p3a"}


def test_n2p2_types():
    """n2p2 (61daa0d) has exactly these 2G types; all are evaluated."""
    assert sorted(sftypes.TYPES) == [2, 3, 9, 12, 13, 20, 21, 22, 23, 24, 25]
    assert sftypes.evaluated_types() == tuple(sorted(sftypes.TYPES))


def test_c_core_evaluates_exactly_the_table():
    for t in range(0, 64):
        row = sftypes.TYPES.get(t)
        assert _core.sf_type_supported(t) == bool(row and row.evaluated), t


def test_c_loader_layouts_equal_the_table():
    """hdnnp_n2p2.c (the LAMMPS plugin's reader) parses and sorts as the table says."""
    for t in range(0, 64):
        row = sftypes.TYPES.get(t)
        got = _core.sf_layout(t)
        if row is None:
            assert got is None
            continue
        assert got == (row.layout, " ".join(row.order)), t


@pytest.mark.parametrize("number", sorted(sftypes.TYPES))
def test_reader_parses_every_field(number):
    row = sftypes.TYPES[number]
    line = f"H {number} " + " ".join(SAMPLE[f] for f in row.fields)
    sf = parse_symfunction(line, ELEMENTS, "input.nn", 7)
    assert (sf.sftype, sf.central, sf.line) == (number, "H", 7)
    for f in row.fields:
        value = getattr(sf, sftypes.ATTRIBUTE.get(f, f))
        if f in ("e1", "e2"):
            continue
        assert value == (SAMPLE[f] if f == "subtype" else float(SAMPLE[f])), f
    if row.neighbours == 2:
        assert (sf.e1, sf.e2) == ("C", "O")          # swapped to index order (n2p2)
    elif row.neighbours == 1:
        assert (sf.e1, sf.e2) == ("O", None)
    else:
        assert (sf.e1, sf.e2) == (None, None)
    # optional fields may be left out; one field more or less than allowed is an error
    short = f"H {number} " + " ".join(SAMPLE[f] for f in row.fields[:row.n_required])
    assert parse_symfunction(short, ELEMENTS, "input.nn", 7).rs == row.optional.get(
        "rs", sf.rs)
    with pytest.raises(InputFileError, match=r"input\.nn:7: .*takes 'Ec"):
        parse_symfunction(line + " 1.0", ELEMENTS, "input.nn", 7)
    with pytest.raises(InputFileError, match=r"input\.nn:7: .*takes 'Ec"):
        parse_symfunction(" ".join(short.split()[:-1]), ELEMENTS, "input.nn", 7)


@pytest.mark.parametrize("args,match", [
    ("H 20 C 3.0 2.0 p2", "r_l = 3.0 must be smaller than r_c = 2.0"),
    ("H 20 C 1.0 2.0 p5", "unknown compact function subtype 'p5'"),
    ("H 22 C C -2 2 120 60 p2", "left angle must be smaller"),
    ("H 22 C C -2 2 -10 100 p2", "centre must be 0 or 180"),
    ("H 24 -2 2 90 500 p2", "beyond"),
    ("H 21 C C -2 2 -200 200 p2", "centre must be 0 or 180"),
    ("H 14 0.1 0 6", "unknown symmetry function type 14"),
])
def test_reader_checks_as_n2p2(args, match):
    with pytest.raises(InputFileError, match=match):
        parse_symfunction(args, ELEMENTS, "input.nn", 3)


def test_sort_order_of_compact_types():
    """n2p2's operator<: type, subtype (string order), e1, e2, rc, rl, angles."""
    lines = ["H 22 O O -2 4 0 90 p2", "H 22 C O -2 4 0 90 p2", "H 22 C C -2 4 0 90 p2a",
             "H 22 C C -2 4 0 90 p2", "H 22 C C -3 4 0 90 p2", "H 22 C C -2 3 0 90 p2",
             "H 22 C C -2 4 0 60 p2", "H 20 O 0 4 p2", "H 23 0 4 e"]
    sfs = [parse_symfunction(x, ELEMENTS, "input.nn", i) for i, x in enumerate(lines, 1)]
    order = [sf.line for sf in sorted(sfs, key=lambda sf: sf.sort_key(ELEMENTS, 6, 0.0))]
    assert order == [8, 6, 5, 7, 4, 2, 1, 3, 9]


def test_potential_refuses_a_type_the_engine_does_not_evaluate(monkeypatch, tmp_path):
    row = sftypes.TYPES[12]
    monkeypatch.setitem(sftypes.TYPES, 12, dataclasses.replace(row, evaluated=False))
    st = Settings.from_text("number_of_elements 1\nelements H\ncutoff_type 1\n"
                            "symfunction_short H 2 H 0.1 0.0 5.0\n"
                            "symfunction_short H 12 0.1 0.0 5.0\n"
                            "global_hidden_layers_short 1\nglobal_nodes_short 2\n"
                            "global_activation_short t l\n", path="pot/input.nn")
    from hpcnnp.potential import Potential
    with pytest.raises(PotentialError, match=r"pot/input\.nn:5: symmetry function type 12 "
                                             r"is not evaluated"):
        Potential(st)


def test_sfgen_writes_only_evaluated_types():
    for kind, k in sfgen.KINDS.items():
        row = sftypes.TYPES[k.sf_type]
        assert row.name == kind and row.evaluated and _core.sf_type_supported(k.sf_type)
        assert k.title == row.title and k.angular == row.angular


def test_sfgen_refuses_a_type_the_engine_does_not_evaluate(monkeypatch):
    row = sftypes.TYPES[13]
    monkeypatch.setitem(sftypes.TYPES, 13, dataclasses.replace(row, evaluated=False))
    with pytest.raises(sfgen.SymFuncParamError, match="not evaluated"):
        sfgen.SymFuncSet("weighted_angular", "imbalzano2018", "center", 3, 6.0)


@pytest.mark.parametrize("kind", sorted(sfgen.KINDS))
def test_every_sfgen_kind_is_evaluated_by_the_engine(kind, tmp_path):
    """Lines of every sfgen kind build a potential whose SFs the engine computes."""
    from ase import Atoms

    from hpcnnp.potential import Potential

    sset = sfgen.SymFuncSet(kind, "gastegger2018", "shift", 3, 5.0, 1.0, 4.0, (1, 2))
    text = ("number_of_elements 2\nelements Li O\ncutoff_type 6\n"
            "global_hidden_layers_short 1\nglobal_nodes_short 3\nglobal_activation_short t l\n"
            + "".join(f"symfunction_short {x[len('symfunction_short '):]}\n"
                      for x in sset.lines(["Li", "O"]) if x))
    pot = Potential(Settings.from_text(text))
    atoms = Atoms("LiOLiO", positions=[[0, 0, 0], [1.9, 0.2, 0], [0.3, 2.1, 0.4],
                                       [2.2, 2.0, -0.3]])
    g = pot.symmetry_functions(atoms)
    assert all(np.isfinite(x).all() and (x != 0).any() for x in g)
    assert {sf.sftype for sfs in pot.symmetry_function_list.values() for sf in sfs} == {
        sfgen.KINDS[kind].sf_type}
