"""Which explored frames to label: the trust band, then a diversity filter.

Trust band (after DP-GEN's trust levels)
----------------------------------------
With the committee's max force deviation σ_F of a frame
(:func:`~hpcnnp.active.committee.committee_disagreement`) and two thresholds:

* σ_F < σ_low — **accurate**: the members agree, the data cover this region;
  labelling it would add little.
* σ_low ≤ σ_F < σ_high — **candidate**: the members disagree, but the frame is
  still physically sensible; this is where new reference data help most.
* σ_F ≥ σ_high (or the frame could not be evaluated) — **failed**: the MD run has
  left physical space (atoms collapsing, exploding forces); such frames are
  expensive or impossible to converge with DFT and would only teach the network
  about unphysical regions; they are discarded.

A frame for which member 0 reports extrapolation warnings (symmetry functions
outside the range of the training data) is a candidate even below σ_low
(``extrapolation=True``): the committee can agree by chance where all members
extrapolate in the same way.  σ_low is of the order of the force error one aims
for (e.g. 0.05–0.1 eV/Å); σ_high a few times that (0.3–0.5 eV/Å).

Diversity filter
----------------
Consecutive MD frames are strongly correlated: labelling twenty frames of the
same picosecond costs twenty DFT calculations for the information of one.  Each
candidate gets a fingerprint (:func:`structure_fingerprint`: per element the mean
and the maximum over its atoms of the *scaled* symmetry functions, so every
component is O(1)), and farthest-point sampling (:func:`diversity_filter`) picks
frames one at a time, each the farthest from all frames picked so far (and, if
given, from the data set), until ``max_select`` frames are picked or the farthest
remaining frame is closer than ``min_distance``.  Distances are RMS differences
over the fingerprint components (independent of the number of SFs).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FRAME_CLASSES", "select_frames", "structure_fingerprint", "fingerprint_distance",
           "diversity_filter"]

#: classes of explored frames, in the order of the trust band
FRAME_CLASSES = ("accurate", "candidate", "failed")


def select_frames(sigma_f, n_warnings=None, *, sigma_low, sigma_high, extrapolation=True,
                  failed=None):
    """Classify frames by the trust band.

    Parameters
    ----------
    sigma_f : array (n,), eV/Å
        Committee max force deviation per frame (NaN = could not be evaluated).
    n_warnings : array (n,) of int, optional
        Extrapolation warnings per frame (member 0).
    sigma_low, sigma_high : float, eV/Å
        Band limits, ``sigma_low < sigma_high``.
    extrapolation : bool
        Frames with warnings and σ_F < sigma_high are candidates.
    failed : array (n,) of bool, optional
        Frames already known to be failed (e.g. atoms too close).

    Returns
    -------
    dict
        ``classes`` (n,) array of str (:data:`FRAME_CLASSES`) and for each class
        the indices of its frames (``accurate``, ``candidate``, ``failed``).
    """
    if not sigma_low < sigma_high:
        raise ValueError(f"select_frames: sigma_low ({sigma_low}) must be < sigma_high "
                         f"({sigma_high})")
    s = np.asarray(sigma_f, dtype=float).ravel()
    bad = ~np.isfinite(s) | (s >= sigma_high)
    if failed is not None:
        bad |= np.asarray(failed, dtype=bool).ravel()
    cand = ~bad & (s >= sigma_low)
    if extrapolation and n_warnings is not None:
        cand |= ~bad & (np.asarray(n_warnings).ravel() > 0)
    classes = np.full(s.shape, "accurate", dtype=object)
    classes[cand] = "candidate"
    classes[bad] = "failed"
    out = {"classes": classes}
    for name in FRAME_CLASSES:
        out[name] = np.flatnonzero(classes == name)
    return out


def structure_fingerprint(potential, atoms):
    """Per-structure SF fingerprint: for every element of the potential, the mean
    and the maximum over its atoms of the scaled SFs (zeros for an absent element).

    Parameters
    ----------
    potential : hpcnnp.potential.Potential
        Provides the SFs and their scaling (member 0 of the committee).
    atoms : ase.Atoms

    Returns
    -------
    ndarray (2 Σ_e n_sf(e),)
    """
    G = potential.symmetry_functions(atoms, scaled=True)
    symbols = atoms.get_chemical_symbols()
    parts = []
    for el in potential.elements:
        n_sf = len(potential.symmetry_function_list[el])
        rows = [g for g, s in zip(G, symbols) if s == el]
        if rows:
            g = np.asarray(rows)
            parts += [g.mean(axis=0), g.max(axis=0)]
        else:
            parts += [np.zeros(n_sf), np.zeros(n_sf)]
    return np.concatenate(parts)


def fingerprint_distance(a, b):
    """RMS difference of fingerprints: a (n, D) or (D,) against b (m, D) -> (n, m)."""
    a = np.atleast_2d(np.asarray(a, dtype=float))
    b = np.atleast_2d(np.asarray(b, dtype=float))
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0) / max(a.shape[1], 1))


def diversity_filter(fingerprints, min_distance=0.0, max_select=None, reference=None,
                     priority=None):
    """Farthest-point sampling with a minimum distance.

    Parameters
    ----------
    fingerprints : array (n, D)
        One row per candidate frame.
    min_distance : float
        Stop when the farthest remaining candidate is closer than this (RMS
        fingerprint distance) to a picked frame or a reference.
    max_select : int, optional
        At most this many picks.
    reference : array (m, D), optional
        Fingerprints already covered (e.g. the data set): picks keep
        ``min_distance`` from them too.
    priority : array (n,), optional
        Without a reference the first pick is the candidate with the largest
        priority (e.g. σ_F); default the first candidate.

    Returns
    -------
    list of int
        Indices into ``fingerprints`` in the order picked.  Ties go to the lower
        index, so the result is deterministic.
    """
    X = np.atleast_2d(np.asarray(fingerprints, dtype=float))
    n = 0 if np.size(fingerprints) == 0 else X.shape[0]
    if n == 0:
        return []
    limit = n if max_select is None else min(int(max_select), n)
    has_ref = reference is not None and np.size(reference) > 0
    d_min = (fingerprint_distance(X, reference).min(axis=1) if has_ref
             else np.full(n, np.inf))
    picked = []
    available = np.ones(n, dtype=bool)
    while len(picked) < limit:
        if not picked and not has_ref:
            if priority is None:
                k = 0
            else:
                p = np.asarray(priority, dtype=float)
                k = int(np.argmax(np.where(np.isfinite(p), p, -np.inf)))
        else:
            score = np.where(available, d_min, -np.inf)
            k = int(np.argmax(score))
            if not available[k] or score[k] < min_distance:
                break
        picked.append(k)
        available[k] = False
        d_min = np.minimum(d_min, fingerprint_distance(X, X[k])[:, 0])
    return picked
