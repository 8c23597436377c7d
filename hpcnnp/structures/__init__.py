"""Structure builders for LLZO / LCO bulk, amorphous, surface, interface and
grain-boundary models (see the module docstrings for literature data)."""
from .crystals import llzo_cubic, llzo_tetragonal, lco, supercell
