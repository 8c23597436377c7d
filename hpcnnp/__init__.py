"""hpcnnp — Behler–Parrinello high-dimensional neural network potentials (HDNNPs)
for interfaces in solid-state batteries, from data generation to production MD.

The engine is n2p2-compatible: potentials (``input.nn``, ``scaling.data``,
``weights.ZZZ.data``) and data sets (``input.data``) move unchanged between
hpcnnp and n2p2.

>>> from hpcnnp import Potential, HDNNPCalculator      # doctest: +SKIP
>>> pot = Potential.from_n2p2("pot_dir")
>>> atoms.calc = HDNNPCalculator("pot_dir")
"""

__version__ = "0.1.0"

__all__ = ["Potential", "HDNNPCalculator", "__version__"]


def __getattr__(name):
    # Imported lazily so that the pure-Python parts (file formats, builders)
    # work before the compiled core is built.
    if name == "Potential":
        from hpcnnp.potential import Potential
        return Potential
    if name == "HDNNPCalculator":
        from hpcnnp.calculator import HDNNPCalculator
        return HDNNPCalculator
    if name == "lammps_plugin_path":
        from hpcnnp.md.plugin import lammps_plugin_path
        return lammps_plugin_path
    raise AttributeError(f"module 'hpcnnp' has no attribute {name!r}")
