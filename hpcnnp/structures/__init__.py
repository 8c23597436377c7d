"""Structure builders for LLZO / LiCoO2 bulk, amorphous, surface, interface and
grain-boundary models.

Every builder returns an ``ase.Atoms`` (periodic in all three directions)
whose ``info`` records the builder, its parameters, the literature reference
and a ``structure_class`` string ("LLZO cubic", "mixture #3", "4Co_La",
"LLZO(001) slab", "interface LLZO(001)|LCO(104)", "GB Σ13(230)/[001]", ...);
formal charges (Li+1 La+3 Zr+4 Co+3 O-2 unless stated in ``info``) are stored
per atom as initial charges.

>>> from hpcnnp import structures as st                      # doctest: +SKIP
>>> llzo = st.llzo_cubic()                                   # 192 atoms
>>> gb = st.grain_boundary(llzo, axis=(0, 0, 1), plane=(2, 3, 0), natoms=17000)
>>> gb.info["sigma"], gb.info["planes"]

Literature data and construction rules are documented in the submodules:
:mod:`.crystals` (Wyckoff positions, Li ordering), :mod:`.amorphous`
(densities, packings, melt-quench, mixtures, Co doping), :mod:`.surfaces`
(slabs, terminations, lattice matching), :mod:`.grain_boundary` (CSL
construction, Sigma counting, clean-up rule), :mod:`.packing`.  :mod:`.builders` is
the table of builders by name that configuration files use (``{builder: lco}``).
"""

from .amorphous import (MIXTURE_MODELS, amorphous, co_doped_amorphous, co_doped_llzo,
                        mass_density, mixture)
from .crystals import lco, llzo_cubic, llzo_tetragonal, supercell
from .grain_boundary import GB_OVERLAP, SIGMA_TILTS, grain_boundary, sigma_from_lattices
from .packing import PACK_MIN_DIST, random_packing
from .production import llzo_lco_interface, llzo_tilt_gb
from .substitution import substitute
from .surfaces import find_matches, interface, oriented_cell, slab
from .builders import BUILDERS, STRUCTURE_CLASSES, build_structure, check_structure_spec

__all__ = [
    "llzo_cubic", "llzo_tetragonal", "lco", "supercell",
    "mixture", "co_doped_llzo", "co_doped_amorphous", "amorphous", "mass_density",
    "MIXTURE_MODELS", "random_packing", "PACK_MIN_DIST",
    "slab", "interface", "oriented_cell", "find_matches",
    "grain_boundary", "sigma_from_lattices", "GB_OVERLAP", "SIGMA_TILTS", "substitute",
    "BUILDERS", "STRUCTURE_CLASSES", "build_structure", "check_structure_spec",
    "llzo_lco_interface", "llzo_tilt_gb",
]
