"""The table of structure builders, by name: the one place a builder is added.

Configuration files name structures by builder (``{builder: lco, repeat: [3, 3,
1]}``); :data:`BUILDERS` maps each name to its function, a one-line summary,
the parameters that take a structure themselves (given as a nested
``{builder: ...}`` spec) and cheap parameter checks that run when a file is read
(so that ``hpcnnp run --check`` finds a dopant site ``Xx`` before any work).
Sampling campaigns (:mod:`hpcnnp.sampling.campaign`) and the starting structures
of active learning (:mod:`hpcnnp.active.explore`) both build from this table.

A structure spec is a mapping ``{builder: NAME, <parameters of the builder>}``
plus the options every structure may have (:data:`SIZE_OPTIONS`): ``repeat: [a,
b, c]`` or ``natoms: N`` (supercell), ``rattle: σ`` (Å), ``seed`` and ``class``
(the class name recorded in a data set).

Campaigns also know structure *classes* by name (:data:`STRUCTURE_CLASSES`:
``LLZO cubic``, ``mixture #3``, ``2Co_La``, ...; :func:`builtin_class`).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import ase.io
import numpy as np
from ase import Atoms
from ase.build import bulk as _ase_bulk

from hpcnnp.errors import HpcnnpError
from hpcnnp.units import AMU_G_CM3, atomic_mass

from .amorphous import DOPANT_SITES, MIXTURE_MODELS, amorphous as _amorphise
from .amorphous import co_doped_amorphous, co_doped_llzo, mixture
from .crystals import lco, llzo_cubic, llzo_tetragonal, supercell
from .grain_boundary import grain_boundary
from .grain_boundary import SIGMA_TILTS
from .packing import random_packing
from .production import HOST_ELEMENTS, LCO_ELEMENTS, LLZO_ELEMENTS, llzo_lco_interface, \
    llzo_tilt_gb
from .surfaces import interface, slab

__all__ = ["Builder", "BUILDERS", "SIZE_OPTIONS", "STRUCTURE_CLASSES", "CLASS_PATTERNS",
           "builtin_class", "check_structure_spec", "build_structure", "builder_parameters",
           "structure_elements"]

# ---------------------------------------------------------------------------------------
# Builders that adapt a library function to a configuration file
# ---------------------------------------------------------------------------------------

def amorphous_packing(parent="llzo_cubic", parent_params=None, density=None, natoms=None,
                      seed=0, atoms=None):
    """Random packing of the composition (and density) of a crystalline parent --
    the start of a melt at high temperature, not a glass.

    Parameters
    ----------
    parent : {"llzo_cubic", "llzo_tetragonal", "lco"}
        Crystal whose composition is packed (ignored when *atoms* is given).
    parent_params : dict, optional
        Parameters of the parent's builder.
    density : float, g/cm^3, optional
        Default: the parent's.
    natoms : int, optional
        Approximate size (whole formula units of the parent).
    atoms : ase.Atoms, optional
        The parent structure itself (e.g. a nested ``{builder: ...}`` spec).
    """
    if atoms is None:
        if parent not in _PARENTS:
            raise HpcnnpError(f"amorphous: parent must be {', '.join(_PARENTS)}, got {parent!r}")
        atoms = BUILDERS[parent].function(**(parent_params or {}))
    return _amorphise(atoms, labeler=None, density=density, natoms=natoms, seed=seed)


_PARENTS = ("llzo_cubic", "llzo_tetragonal", "lco")


def packing(composition, density=None, cell=None, seed=0):
    """Random packing of a formula (``Li7La3Zr2O12``) at *density* g/cm^3 in a cube,
    or in *cell* (3 lengths or 3x3, Å)."""
    try:
        symbols = Atoms(composition).get_chemical_symbols()
    except Exception:
        raise HpcnnpError(f"packing: cannot read the formula {composition!r}") from None
    if (density is None) == (cell is None):
        raise HpcnnpError("packing: give exactly one of density (g/cm^3) or cell (Å)")
    if cell is None:
        if not float(density) > 0:
            raise HpcnnpError(f"packing: density must be > 0 g/cm^3, got {density}")
        mass = sum(atomic_mass(s) for s in symbols)
        length = (mass * AMU_G_CM3 / float(density)) ** (1 / 3)
        cell = np.eye(3) * length
    else:
        c = np.array(cell, float)
        cell = np.diag(c) if c.size == 3 else c.reshape(3, 3)
    atoms = random_packing(symbols, cell, seed=seed)
    atoms.info.pop("packing", None)
    atoms.info.update(builder="packing", structure_class=f"packing {composition}",
                      method="random packing", composition=composition)
    return atoms


def bulk(name, crystalstructure=None, a=None, cubic=False):
    """``ase.build.bulk`` (simple test structures, e.g. Cu fcc for the emt labeler)."""
    return _ase_bulk(name, crystalstructure=crystalstructure, a=a, cubic=cubic)


def from_file(path, index=-1, base_dir="."):
    """A structure from a file (``ase.io.read``; relative to the configuration file)."""
    p = Path(path)
    if not p.is_absolute():
        p = Path(base_dir) / p
    if not p.is_file():
        raise HpcnnpError(f"structure file {p} not found")
    return ase.io.read(p, index=index)


# ---------------------------------------------------------------------------------------
# Parameter checks (cheap, no structure is built)
# ---------------------------------------------------------------------------------------

def _dopant_site(value):
    if str(value).capitalize() not in DOPANT_SITES:
        return (f"{value!r} is not a dopant site of LLZO (Co substitutes one of "
                f"{', '.join(DOPANT_SITES)})")
    return None


def _dopant_count(value):
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 6
    return None if ok else f"must be 1..6 (Co per 192-atom LLZO cell), got {value!r}"


def _mixture_model(value):
    ok = isinstance(value, int) and not isinstance(value, bool) and value in MIXTURE_MODELS
    return None if ok else f"must be one of the mixture models {sorted(MIXTURE_MODELS)}"


def _sigma(value):
    return None if value in SIGMA_TILTS else f"must be one of {sorted(SIGMA_TILTS)}"


def _parent(value):
    return None if value in _PARENTS else f"must be one of {', '.join(_PARENTS)}"


# ---------------------------------------------------------------------------------------
# Elements of a spec (cheap, no structure is built): spec -> set, or None if unknown
# ---------------------------------------------------------------------------------------

def _fixed(elements):
    return lambda spec: set(elements)


def _formula_elements(spec):
    try:
        return set(Atoms(spec.get("composition", "")).get_chemical_symbols())
    except Exception:
        return None


def _nested_elements(*keys, parent=None):
    def elements(spec):
        found = set()
        for key in keys:
            value = spec.get(key)
            if isinstance(value, dict) and "builder" in value:
                inner = structure_elements(value)
            elif key == "atoms" and value is None and parent:
                inner = structure_elements({"builder": spec.get(parent, "llzo_cubic")})
            else:
                inner = None
            if inner is None:
                return None
            found |= inner
        return found
    return elements


def _co_doped(spec):
    return set(LLZO_ELEMENTS) | {"Co"}


def _mixture_elements(spec):
    comp = MIXTURE_MODELS.get(spec.get("model", 3))
    return None if comp is None else {el for el, n in comp.items() if n}


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Builder:
    """One entry of :data:`BUILDERS`.

    Attributes
    ----------
    function : callable
        ``function(**parameters) -> ase.Atoms``.
    summary : str
        One line for listings and messages.
    structure_args : tuple of str
        Parameters that take a structure; a nested spec ``{builder: ...}`` given
        for them is built first.
    checks : dict
        Parameter -> ``check(value) -> problem or None``, run when a file is read.
    elements : callable or None
        ``elements(spec) -> set`` of the element symbols of the structure a spec
        builds, without building it (None: not known in advance, e.g. a file).
    """

    function: Callable
    summary: str
    structure_args: tuple = ()
    checks: dict = field(default_factory=dict)
    elements: Callable = None

    @property
    def signature(self):
        return inspect.signature(self.function)


#: builder name -> :class:`Builder`; the one place a builder is added
BUILDERS = {
    "llzo_cubic": Builder(llzo_cubic, "cubic garnet LLZO, 192 atoms (primitive: true -> 96)",
                          elements=_fixed(LLZO_ELEMENTS)),
    "llzo_tetragonal": Builder(llzo_tetragonal, "tetragonal LLZO, 192 atoms",
                               elements=_fixed(LLZO_ELEMENTS)),
    "lco": Builder(lco, "LiCoO2 R-3m, 12 atoms", elements=_fixed(LCO_ELEMENTS)),
    "mixture": Builder(mixture, "LLZO-LCO mixture model #1-#5 (random packing, 122-183 "
                                "atoms)", checks={"model": _mixture_model},
                       elements=_mixture_elements),
    "co_doped_amorphous": Builder(co_doped_amorphous, "amorphous nCo-doped LLZO (random "
                                  "packing)", checks={"site": _dopant_site, "n": _dopant_count},
                                  elements=_co_doped),
    "co_doped_llzo": Builder(co_doped_llzo, "crystalline nCo-doped LLZO",
                             checks={"site": _dopant_site, "n": _dopant_count},
                             elements=_co_doped),
    "amorphous": Builder(amorphous_packing, "random packing of a crystal's composition and "
                         "density", ("atoms",), checks={"parent": _parent},
                         elements=_nested_elements("atoms", parent="parent")),
    "packing": Builder(packing, "random packing of a formula at a density",
                       elements=_formula_elements),
    "bulk": Builder(bulk, "ase.build.bulk (test structures)",
                    elements=lambda spec: {spec.get("name")}),
    "file": Builder(from_file, "a structure file read by ase.io.read"),
    "supercell": Builder(supercell, "a supercell of a structure (natoms or repeat)",
                         ("atoms",), elements=_nested_elements("atoms")),
    "slab": Builder(slab, "a stoichiometric slab (hkl) with vacuum", ("atoms",),
                    elements=_nested_elements("atoms")),
    "interface": Builder(interface, "a periodic substrate|film interface cell",
                         ("substrate", "film"), elements=_nested_elements("substrate", "film")),
    "grain_boundary": Builder(grain_boundary, "a symmetric tilt bicrystal (two GBs)",
                              ("atoms",), elements=_nested_elements("atoms")),
    "llzo_lco_interface": Builder(llzo_lco_interface, "LLZO(001)|LCO(104) interface cell "
                                  "(production MD of the main job)",
                                  elements=_fixed(HOST_ELEMENTS["llzo_lco_interface"])),
    "llzo_tilt_gb": Builder(llzo_tilt_gb, "symmetric Σ-tilt GB of cubic LLZO (Σ13, 17, 19, "
                            "33; production MD of the main job)", checks={"sigma": _sigma},
                            elements=_fixed(HOST_ELEMENTS["llzo_tilt_gb"])),
}

#: options every structure spec may have besides the builder's parameters
SIZE_OPTIONS = ("repeat", "natoms", "rattle", "class", "builder", "seed")

#: built-in structure classes of campaigns -> structure spec
STRUCTURE_CLASSES = {
    "LLZO cubic": {"builder": "llzo_cubic"},
    "LLZO tetragonal": {"builder": "llzo_tetragonal"},
    "LCO": {"builder": "lco", "repeat": [3, 3, 1]},
    "amorphous LLZO": {"builder": "amorphous", "parent": "llzo_cubic"},
    "amorphous LCO": {"builder": "amorphous", "parent": "lco", "natoms": 96},
}
#: patterns of built-in classes -> function(match) -> structure spec
CLASS_PATTERNS = (
    (re.compile(r"mixture #([1-5])"), lambda m: {"builder": "mixture", "model": int(m[1])}),
    (re.compile(r"([1-6])Co_(La|Zr|Li)"),
     lambda m: {"builder": "co_doped_amorphous", "n": int(m[1]), "site": m[2]}),
)
#: how the class patterns read in messages
CLASS_PATTERN_NAMES = ("mixture #1..#5", "<n>Co_<La|Zr|Li> (n = 1..6)")


def builtin_class(name):
    """The structure spec of a built-in class name, or None."""
    if name in STRUCTURE_CLASSES:
        return dict(STRUCTURE_CLASSES[name])
    for pattern, make in CLASS_PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            return make(m)
    return None


def builder_parameters(name):
    """Parameters a spec of builder *name* may give (besides :data:`SIZE_OPTIONS`)."""
    return sorted(set(BUILDERS[name].signature.parameters) - {"base_dir", "seed"})


def structure_elements(spec):
    """Element symbols of the structure *spec* builds (a set), without building it;
    None when they are not known in advance (a structure file)."""
    builder = BUILDERS.get(spec.get("builder")) if isinstance(spec, dict) else None
    if builder is None or builder.elements is None:
        return None
    return builder.elements(spec)


def _is_spec(value):
    return isinstance(value, dict) and "builder" in value


def check_structure_spec(spec, where="structure"):
    """Check builder name and parameters of a structure spec without building it.

    Raises
    ------
    HpcnnpError
        Unknown builder, unknown parameter, a value a builder check rejects, or
        bad size options; the message starts with *where*.
    """
    problem = spec_problem(spec)
    if problem is not None:
        keys, message, _ = problem
        raise HpcnnpError(f"{where}{''.join(f'.{k}' for k in keys)}: {message}")


def spec_problem(spec):
    """``(key path, message, show_value)`` of the first problem of a structure spec
    (*show_value*: the message should quote the key's value), or None."""
    if not isinstance(spec, dict):
        return (), "must be a mapping with 'builder' and its parameters", False
    name = spec.get("builder")
    if name not in BUILDERS:
        return ("builder",), (f"unknown builder {name!r}; known builders: "
                              + ", ".join(BUILDERS)), False
    params = {k: v for k, v in spec.items() if k not in SIZE_OPTIONS}
    return _parameter_problem(name, params) or _nested_problem(name, params) or \
        _size_problem(spec)


def _parameter_problem(name, params):
    builder = BUILDERS[name]
    accepted = set(builder.signature.parameters) - {"base_dir"}
    for key in sorted(params):
        if key not in accepted:
            return (key,), (f"builder {name} has no parameter {key!r} (parameters: "
                            f"{', '.join(builder_parameters(name))})"), False
    try:
        builder.signature.bind_partial(**params)
    except TypeError as exc:
        return (), str(exc), False
    for key, check in builder.checks.items():
        message = check(params[key]) if key in params else None
        if message:
            return (key,), message, False
    return None


def _nested_problem(name, params):
    for key in BUILDERS[name].structure_args:
        inner = spec_problem(params[key]) if _is_spec(params.get(key)) else None
        if inner is not None:
            return ((key,) + inner[0],) + tuple(inner[1:])
    return None


def _size_problem(spec):
    if "repeat" in spec and "natoms" in spec:
        return ("natoms",), "give repeat or natoms, not both", False
    rep = spec.get("repeat")
    if rep is not None and (not isinstance(rep, (list, tuple)) or len(rep) != 3 or not all(
            isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in rep)):
        return ("repeat",), f"must be three whole numbers >= 1, got {rep!r}", False
    n = spec.get("natoms")
    if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
        return ("natoms",), "must be a whole number >= 1", True
    r = spec.get("rattle")
    if r is not None and not (isinstance(r, (int, float)) and not isinstance(r, bool)
                              and 0 <= r < 1):
        return ("rattle",), "must be an amplitude in Å, 0 <= rattle < 1", True
    return None


def build_structure(spec, seed=0, base_dir="."):
    """Build the :class:`ase.Atoms` of a structure spec (see the module docstring).

    The *seed* goes to builders that take one (packings, Li orderings) unless the
    spec fixes ``seed``; ``natoms`` goes to builders that take it, otherwise it
    selects a supercell (:func:`hpcnnp.structures.supercell`); nested specs of
    structure parameters are built first (with the same seed).
    """
    name = spec["builder"]
    params = _call_parameters(dict(spec), seed, base_dir)
    try:
        atoms = BUILDERS[name].function(**params)
    except HpcnnpError:
        raise
    except Exception as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if not isinstance(v, Atoms))
        raise HpcnnpError(f"builder {name}({shown}) failed: {type(exc).__name__}: "
                          f"{exc}") from exc
    if spec.get("repeat") is not None:
        info = dict(atoms.info)
        atoms = atoms.repeat(tuple(int(r) for r in spec["repeat"]))
        atoms.info = dict(info, supercell={"repeat": list(spec["repeat"]),
                                           "parent_natoms": len(atoms) // int(np.prod(
                                               spec["repeat"]))})
    elif spec.get("natoms") is not None and "natoms" not in params:
        atoms = supercell(atoms, natoms=int(spec["natoms"]))
    if spec.get("rattle"):
        atoms.rattle(float(spec["rattle"]), seed=int(spec.get("seed", seed)))
    atoms.pbc = True
    return atoms


def _call_parameters(spec, seed, base_dir):
    """The keyword arguments of the builder of *spec*: its parameters, nested specs
    built, and seed, base_dir, natoms where the builder takes them."""
    builder = BUILDERS[spec["builder"]]
    sig = builder.signature
    params = {k: v for k, v in spec.items() if k not in SIZE_OPTIONS}
    for key in builder.structure_args:
        if _is_spec(params.get(key)):
            params[key] = build_structure(params[key], seed=seed, base_dir=base_dir)
    extra = {"seed": int(spec.get("seed", seed)), "base_dir": str(base_dir),
             "natoms": spec.get("natoms")}
    for key, value in extra.items():
        if key in sig.parameters and value is not None:
            params[key] = value
    return params
