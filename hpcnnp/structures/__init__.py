"""Structure builders for LLZO / LCO bulk, amorphous, surface, interface and
grain-boundary models (see the module docstrings for literature data)."""
from .crystals import llzo_cubic, llzo_tetragonal, lco, supercell
from .amorphous import (MIXTURE_MODELS, mixture, co_doped_llzo, co_doped_amorphous,
                        amorphous, mass_density)
from .packing import random_packing
from .surfaces import slab, interface, oriented_cell, find_matches
from .grain_boundary import grain_boundary, sigma_from_lattices
