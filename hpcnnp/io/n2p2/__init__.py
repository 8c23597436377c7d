"""n2p2 file formats: ``input.data``, ``input.nn``, ``scaling.data``, ``weights.ZZZ.data``.

hpcnnp exchanges potentials and data sets with n2p2 unchanged, so this module reads
what n2p2 reads and writes, byte for byte, what n2p2 writes.  The rules implemented here
are those of ``shared/n2p2-formats.md`` (n2p2 commit 61daa0d); the section numbers in
the comments refer to that document.

Structures (``input.data``)
    :func:`iter_data` streams a file of any size, one :class:`ase.Atoms` per
    ``begin``/``end`` block; :func:`read_data` collects (a slice of) them and
    :func:`write_data` writes n2p2's own output format (``%24.16E``, 17 significant
    digits, so every double survives a write/read round trip exactly); it refuses what
    the readers refuse -- a charged periodic structure -- unless asked to write it
    neutral (``neutralize=True``: a uniform compensating background).

    Conventions of the returned Atoms: positions are kept verbatim (n2p2 wraps them into
    the cell on reading, hpcnnp does not); ``pbc=True`` and ``cell`` from the three
    ``lattice`` lines, or ``pbc=False`` and a zero cell without them; atomic charges as
    initial charges; the reference energy and forces in a
    :class:`~ase.calculators.singlepoint.SinglePointCalculator` (energy 0 when the file
    has no ``energy`` line); ``info`` keys ``comment`` (only if the block has one),
    ``set`` ("train"/"test", only if tagged), ``charge`` (total charge),
    ``n2p2_index`` (0-based structure index) and ``n2p2_line`` (line of ``begin``).

Settings (``input.nn``)
    :func:`read_settings` returns a :class:`Settings`: keyword access with n2p2's
    aliases, and validated derived quantities (elements in atomic-number order,
    symmetry functions sorted as n2p2 sorts them, scaling type, network topology,
    offsets, normalisation).  :func:`write_settings` rewrites the file keeping every
    line and updating or appending keywords.

Potential files
    :func:`read_scaling` / :func:`write_scaling` and :func:`read_weights` /
    :func:`write_weights`, with n2p2's headers.

Modules: :mod:`~hpcnnp.io.n2p2.settings` (input.nn), :mod:`~hpcnnp.io.n2p2.symfunctions`
(``symfunction_short`` lines, with the SF type table :mod:`hpcnnp.descriptors.sftypes`),
:mod:`~hpcnnp.io.n2p2.potential_files` (scaling.data, weights), :mod:`~hpcnnp.io.n2p2.data`
(input.data) and ``_common`` (elements, number parsing, atomic writes); everything is
importable from ``hpcnnp.io.n2p2``.

Every problem in an input file raises :class:`~hpcnnp.errors.InputFileError` naming the
file, the 1-based line and the problem.

>>> settings = read_settings("pot/input.nn")                       # doctest: +SKIP
>>> settings.elements, settings.layer_sizes("Li")                  # doctest: +SKIP
(['Li', 'O', 'Co', 'Zr', 'La'], [225, 20, 20, 1])
>>> for atoms in iter_data("input.data", settings.elements):       # doctest: +SKIP
...     print(atoms.info["n2p2_index"], atoms.get_potential_energy())
"""

from hpcnnp.io.n2p2._common import N2P2_ELEMENTS, element_order, weights_filename
from hpcnnp.io.n2p2.data import count_structures, iter_data, read_data, write_data
from hpcnnp.io.n2p2.potential_files import (_SCALING_HEADER, _n_connections,  # noqa: F401
                                            read_scaling, read_weights, write_scaling,
                                            write_weights)
from hpcnnp.io.n2p2.settings import Settings, read_settings, setting_tokens, write_settings
from hpcnnp.io.n2p2.symfunctions import SymmetryFunction, parse_symfunction

__all__ = [
    "N2P2_ELEMENTS", "element_order", "SymmetryFunction", "parse_symfunction",
    "Settings", "read_settings", "write_settings", "setting_tokens",
    "read_scaling", "write_scaling", "read_weights", "write_weights",
    "weights_filename", "iter_data", "read_data", "write_data", "count_structures",
]
