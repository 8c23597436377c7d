"""The one table of structure builders (hpcnnp.structures.BUILDERS), used by
campaigns and by the starting structures of active learning; the Σ table and the
substitution of the production grain boundary."""

import inspect

import pytest
from ase import Atoms

from hpcnnp import structures as st
from hpcnnp.errors import HpcnnpError, StructureError
from hpcnnp.structures.builders import BUILDERS, build_structure, spec_problem


def test_every_structure_builder_of_the_package_is_in_the_table():
    functions = {getattr(st, name) for name in st.__all__
                 if inspect.isfunction(getattr(st, name))}
    not_builders = {st.mass_density, st.random_packing, st.oriented_cell, st.find_matches,
                    st.sigma_from_lattices, st.substitute, st.build_structure,
                    st.check_structure_spec, st.amorphous}
    in_table = {b.function for b in BUILDERS.values()}
    assert functions - not_builders <= in_table
    # amorphous() itself (melt-quench with a labeler) is reached through the
    # configuration builder "amorphous" (a packing of a parent crystal or structure)
    assert BUILDERS["amorphous"].structure_args == ("atoms",)


@pytest.mark.parametrize("spec, keys, words", [
    ({"builder": "co_doped_amorphous", "site": "Xx"}, ("site",), "not a dopant site"),
    ({"builder": "co_doped_llzo", "n": 9}, ("n",), "must be 1..6"),
    ({"builder": "mixture", "model": 7}, ("model",), "mixture models"),
    ({"builder": "llzo_tilt_gb", "sigma": 5}, ("sigma",), "must be one of [13, 17, 19, 33]"),
    ({"builder": "interface", "substrate": {"builder": "llzo_cubic", "edge": 1}},
     ("substrate", "edge"), "no parameter 'edge'"),
    ({"builder": "lco", "repeat": [1, 2]}, ("repeat",), "three whole numbers"),
    ({"builder": "lco", "repeat": [1, 1, 1], "natoms": 12}, ("natoms",), "not both"),
])
def test_specs_are_checked_without_building(spec, keys, words):
    problem = spec_problem(spec)
    assert problem is not None and problem[0] == keys and words in problem[1]


def test_nested_specs_are_built_first():
    atoms = build_structure({"builder": "supercell", "atoms": {"builder": "lco"},
                             "natoms": 48})
    symbols = atoms.get_chemical_symbols()
    assert len(atoms) >= 48 and len(atoms) % 12 == 0
    assert symbols.count("Li") == symbols.count("Co") == symbols.count("O") // 2


def test_sigma_table_and_substitution():
    assert set(st.SIGMA_TILTS) == {13, 17, 19, 33}
    for axis, plane in st.SIGMA_TILTS.values():             # the axis lies in the plane
        assert sum(a * p for a, p in zip(axis, plane)) == 0
    atoms = Atoms("La4O6", positions=[[i, 0, 0] for i in range(10)], cell=[10, 2, 2],
                  pbc=True)
    st.substitute(atoms, element="Co", site="La", count=2, seed=1)
    assert atoms.get_chemical_symbols().count("Co") == 2
    assert atoms.info["substitution"] == "2 Co on La (random, seed 1)"
    with pytest.raises(StructureError, match=r"count 3 must be 1..2"):
        st.substitute(atoms, site="La", count=3)
    with pytest.raises(HpcnnpError, match="has no Zr atoms"):
        st.substitute(atoms, site="Zr")
