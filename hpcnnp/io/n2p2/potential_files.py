"""n2p2's potential files besides ``input.nn``: ``scaling.data`` (§7) and
``weights.ZZZ.data`` (§8.3), read strictly and written byte for byte as n2p2 writes them."""

from __future__ import annotations

import os

import numpy as np

from hpcnnp.errors import InputFileError, PotentialError
from hpcnnp.io.n2p2._common import _atomic_write, _read_lines, _to_float, _to_int

__all__ = ["read_scaling", "write_scaling", "read_weights", "write_weights"]

# ---------------------------------------------------------------------------------------
# scaling.data (§7)
# ---------------------------------------------------------------------------------------

_SCALING_HEADER = """\
################################################################################
# Symmetry function scaling data.
################################################################################
# Col  Name     Description
################################################################################
# 1    e_index  Element index.
# 2    sf_index Symmetry function index.
# 3    sf_min   Symmetry function minimum.
# 4    sf_max   Symmetry function maximum.
# 5    sf_mean  Symmetry function mean.
# 6    sf_sigma Symmetry function sigma.
#########################################################################################################################
#        1          2                        3                        4                        5                        6
#  e_index   sf_index                   sf_min                   sf_max                  sf_mean                 sf_sigma
#########################################################################################################################
"""



def _data_rows(path, lines, kind):
    """``(line number, tokens)`` of the data lines of an n2p2 ``kind`` file (scaling,
    weight): comment lines are skipped; an empty line is an error, as for n2p2."""
    for number, raw in enumerate(lines, start=1):
        if raw.startswith("#"):
            continue
        tokens = raw.split()
        if not tokens:
            raise InputFileError(path, number, f"empty line (n2p2 cannot read {kind} files "
                                               "with empty lines)")
        yield number, tokens

def read_scaling(path, n_sf: dict, elements) -> dict[str, np.ndarray]:
    """Read ``scaling.data`` (§7).

    As n2p2 does, every line not starting with ``#`` is a data row, assigned in order
    element by element (``n_sf[e]`` rows each, elements in index order); the index
    columns are only checked loosely (an error only when *both* differ from the
    expected values).  Rows with 5 columns (no sigma) get sigma = 0.

    Parameters
    ----------
    path : str or os.PathLike
    n_sf : dict
        Element -> number of symmetry functions.
    elements : list of str
        Elements in n2p2 index order (``Settings.elements``).

    Returns
    -------
    dict
        Element -> array (n_sf, 4): columns min, max, mean, sigma of the raw SF values.
    """
    path = os.fspath(path)
    lines = _read_lines(path)
    rows = list(_data_rows(path, lines, "scaling"))
    expected = sum(n_sf[e] for e in elements)
    if len(rows) != expected:
        where = rows[expected][0] if len(rows) > expected else (len(lines) or None)
        detail = ", ".join(f"{e} {n_sf[e]}" for e in elements)
        raise InputFileError(path, where, f"{len(rows)} data rows, expected {expected} "
                                          f"(symmetry functions per element: {detail})")
    stats, k = {}, 0
    for ie, element in enumerate(elements, start=1):
        table = np.zeros((n_sf[element], 4))
        for isf in range(1, n_sf[element] + 1):
            number, tokens = rows[k]
            k += 1
            if len(tokens) not in (5, 6):
                raise InputFileError(path, number, f"expected 6 columns (e_index sf_index "
                                                   f"min max mean sigma), got {len(tokens)}")
            e_index = _to_int(tokens[0], path, number, "e_index")
            sf_index = _to_int(tokens[1], path, number, "sf_index")
            if e_index != ie and sf_index != isf:
                raise InputFileError(path, number,
                                     f"row is for element {e_index} SF {sf_index}, expected "
                                     f"element {ie} ({element}) SF {isf}")
            table[isf - 1, :len(tokens) - 2] = [
                _to_float(t, path, number, name)
                for t, name in zip(tokens[2:], ("sf_min", "sf_max", "sf_mean", "sf_sigma"))]
        stats[element] = table
    return stats


def write_scaling(path, elements, stats: dict):
    """Write ``scaling.data`` in n2p2's format (header + ``%10d %10d %24.16E`` x 4).

    Parameters
    ----------
    path : str or os.PathLike
        Output file (written atomically).
    elements : list of str
        Elements in n2p2 index order.
    stats : dict
        Element -> array (n_sf, 4): min, max, mean, sigma.
    """
    def write(f):
        f.write(_SCALING_HEADER)
        for ie, element in enumerate(elements, start=1):
            table = np.asarray(stats[element], dtype=float)
            if table.ndim != 2 or table.shape[1] != 4:
                raise ValueError(f"scaling statistics of {element} must have shape "
                                 f"(n_sf, 4), got {table.shape}")
            f.write("".join("%10d %10d %24.16E %24.16E %24.16E %24.16E\n"
                            % (ie, isf, *row) for isf, row in enumerate(table.tolist(), 1)))

    _atomic_write(path, write)



# ---------------------------------------------------------------------------------------
# weights.ZZZ.data (§8.3)
# ---------------------------------------------------------------------------------------

_WEIGHTS_HEADER = """\
################################################################################
# Neural network connection values (weights and biases).
################################################################################
# Col  Name       Description
################################################################################
# 1    connection Neural network connection value.
# 2    t          Connection type (a = weight, b = bias).
# 3    index      Index enumerating weights.
# 4    l_s        Starting point layer (end point layer for biases).
# 5    n_s        Starting point neuron in starting layer (end point neuron for biases).
# 6    l_e        End point layer.
# 7    n_e        End point neuron in end layer.
################################################################################
#                      1 2         3     4     5     6     7
#             connection t     index   l_s   n_s   l_e   n_e
############################################################
"""


def _n_connections(layer_sizes):
    return sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


def read_weights(path, n_expected: int) -> np.ndarray:
    """Read a ``weights.ZZZ.data`` (§8.3): the first column of every non-``#`` line.

    Parameters
    ----------
    path : str or os.PathLike
    n_expected : int
        Number of connections the network needs (``Settings.n_weights``).

    Returns
    -------
    numpy.ndarray, shape (n_expected,)
        Connection values in n2p2's order.
    """
    path = os.fspath(path)
    values = []
    lines = _read_lines(path)
    for number, tokens in _data_rows(path, lines, "weight"):
        if len(values) == n_expected:
            raise InputFileError(path, number, f"more than the {n_expected} connection "
                                               "values the network needs")
        values.append(_to_float(tokens[0], path, number, "connection value"))
    if len(values) != n_expected:
        raise InputFileError(path, len(lines) or None,
                             f"{len(values)} connection values, the network needs "
                             f"{n_expected}")
    return np.array(values, dtype=float)


def write_weights(path, weights, layer_sizes):
    """Write a ``weights.ZZZ.data`` in n2p2's format (§8.3).

    Per layer k = 1..L: the weights a(k-1, m -> k, n) with the start neuron m as outer
    and the end neuron n as inner loop, then the biases b(k, n).  Lines are
    ``%24.16E a %9d %5d %5d %5d %5d`` and ``%24.16E b %9d %5d %5d`` (1-based neuron and
    connection indices, layer 0 = input), after n2p2's header.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (written atomically).
    weights : array-like, shape (n_connections,)
    layer_sizes : list of int
        ``[n_sf, h_1, ..., 1]``.
    """
    weights = np.asarray(weights, dtype=float).ravel()
    sizes = [int(n) for n in layer_sizes]
    if weights.size != _n_connections(sizes):
        raise PotentialError(f"{os.fspath(path)}: {weights.size} connection values for "
                             f"layers {sizes}, which need {_n_connections(sizes)}")
    values = weights.tolist()

    def write(f):
        f.write(_WEIGHTS_HEADER)
        index = 0
        for k in range(1, len(sizes)):
            n_in, n_out = sizes[k - 1], sizes[k]
            out = []
            for m in range(1, n_in + 1):
                for n in range(1, n_out + 1):
                    out.append("%24.16E a %9d %5d %5d %5d %5d\n"
                               % (values[index], index + 1, k - 1, m, k, n))
                    index += 1
            for n in range(1, n_out + 1):
                out.append("%24.16E b %9d %5d %5d\n" % (values[index], index + 1, k, n))
                index += 1
            f.write("".join(out))

    _atomic_write(path, write)


