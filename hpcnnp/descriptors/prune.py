"""Remove symmetry functions that carry no information on a data set.

Rule-generated SF sets (imbalzano2018 shift grids start at r_s = r_c/N, i.e.
0.67 Å for the published LLZO/LCO set) contain functions that are zero, or
nearly constant, for every atom of a data set because no pair of atoms comes
that close.  With min/max scaling their scaling factor (S_max − S_min)/(G_max −
G_min) is huge, so their scaled values and derivatives explode for any new
structure and destabilise force training; n2p2's answer is ``nnp-prune range
<threshold>``, which comments those lines out of ``input.nn``.  This module
does the same: SFs whose range G_max − G_min over the data set is below a
threshold are commented out (``#pruned: symfunction_short ...``), so that the
settings file still documents them, and the scaling statistics must then be
recomputed (``hpcnnp scale``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpcnnp.fileio import write_atomic
from hpcnnp.io.n2p2 import read_scaling, read_settings

PRUNE_MARK = "#pruned (range < {:g}): "
TAIL_MARK = "#pruned (tail > {:g} sigma): "


def prune_by_range(settings, scaling, threshold=1e-4, output=None):
    """Comment out SFs with G_max − G_min < ``threshold`` (SF units).

    Parameters
    ----------
    settings : path
        input.nn with the SF lines.
    scaling : path
        scaling.data computed for exactly these SFs.
    threshold : float
        Minimum range (max − min over all atoms) an SF must have to stay.
    output : path, optional
        Where to write the pruned input.nn (default: overwrite ``settings``,
        atomically).

    Returns
    -------
    dict element -> number of pruned SFs.  An element would be left without
    SFs -> ValueError (lower the threshold).
    """
    return _prune(settings, scaling, lambda st: st[:, 1] - st[:, 0] < threshold,
                  PRUNE_MARK.format(threshold), f"range < {threshold:g}", output)


def prune_by_tail(settings, scaling, max_tail, output=None):
    """Comment out rare-event SFs: (G_max − G_mean)/σ_G > ``max_tail``.

    Such a function is nearly constant on the data set and leaves its
    baseline only for a handful of atoms (a narrow radial shell or a high-ζ
    angular term that a pair or triplet of atoms enters rarely).  Min/max
    scaling maps those few atoms to the far end of the input range, so a
    network responds to them with a near-step that the data set samples only
    a few times.  ``scaling`` must hold real σ values (column 6).  Same
    parameters and return value as :func:`prune_by_range`.
    """
    def bad(st):               # (max - mean) > max_tail * sigma, without dividing by 0
        return st[:, 1] - st[:, 2] > max_tail * st[:, 3]
    return _prune(settings, scaling, bad, TAIL_MARK.format(max_tail),
                  f"(max - mean)/sigma > {max_tail:g}", output)


def _prune(settings, scaling, is_bad, mark, rule, output):
    """Comment out the SF lines for which ``is_bad(stats[el])`` is True."""
    settings = Path(settings)
    st = read_settings(settings)
    n_sf = {el: len(st.symmetry_functions[el]) for el in st.elements}
    stats = read_scaling(scaling, n_sf, st.elements)
    drop_lines, counts = set(), {}
    for el in st.elements:
        bad = np.flatnonzero(is_bad(stats[el]))
        if len(bad) == n_sf[el]:
            raise ValueError(f"{settings}: pruning with {rule} would remove "
                             f"every SF of {el}; relax the threshold")
        counts[el] = int(len(bad))
        drop_lines.update(st.symmetry_functions[el][i].line for i in bad)
    lines = settings.read_text().splitlines(keepends=True)
    out_lines = [mark + line if i + 1 in drop_lines else line for i, line in enumerate(lines)]
    target = Path(output) if output else settings
    write_atomic(target, "".join(out_lines))
    return counts
