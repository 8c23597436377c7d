"""A committee of K potentials: their disagreement, and their training.

Committee disagreement
----------------------
K networks trained on the same data from different initial weights and different
train/test splits agree where the data constrain them and scatter where they do
not.  For a structure with atoms i and member forces F_k,i (eV/Å) the force
deviation of atom i is

    σ_F,i = sqrt( (1/K) Σ_k |F_k,i − F̄_i|² ),      F̄_i = (1/K) Σ_k F_k,i

and the frame's measure is σ_F = max_i σ_F,i (the "max force deviation" of
DP-GEN: Zhang et al., Comput. Phys. Commun. 253, 107206 (2020),
doi:10.1016/j.cpc.2020.107206).  The maximum, not the mean, because a single
badly described atom (a Li in a new site, a Co at a boundary) is what breaks an MD
run.  The energy spread σ_E is the standard deviation (1/K, not 1/(K−1)) of
the members' energies per atom (eV/atom).  Both are population moments, so K
identical members give exactly 0.

Training
--------
Member k of iteration n lives in ``committee/member_k/``: an ``input.nn`` (the
campaign's template with ``random_seed = seed + k + 1000 n``, ``test_fraction``
and ``epochs`` set; with warm start also ``use_old_weights_short`` and the
previous member's ``weights.ZZZ.data``), trained by :class:`hpcnnp.training.
trainer.Trainer` on the shared ``input.data``/``scaling.data``.  The folder is
then a complete n2p2 potential.  :func:`train_member` is the task body (a Parsl
python_app on a worker, or a plain call); it writes ``done.json`` last, with a
hash of its inputs, so a finished member is skipped when the step is re-run and
an interrupted one continues from its training checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import write_atomic

__all__ = ["committee_disagreement", "committee_evaluate", "load_committee",
           "prepare_member", "train_member", "member_done", "MEMBER_MARKER"]

#: file written last into a finished member folder
MEMBER_MARKER = "done.json"


# ---------------------------------------------------------------------------------------
# Disagreement
# ---------------------------------------------------------------------------------------

def committee_evaluate(potentials, atoms):
    """All members on one structure.

    Parameters
    ----------
    potentials : sequence of hpcnnp.potential.Potential
        The committee (K >= 1; member 0 is the one whose warnings are counted).
    atoms : ase.Atoms

    Returns
    -------
    dict
        ``energies`` (K,) eV, ``forces`` (K, N, 3) eV/Å, ``sigma_f_atoms`` (N,) eV/Å,
        ``sigma_f`` (max over atoms, eV/Å), ``sigma_e`` (eV/atom), ``n_warnings``
        (extrapolation warnings of member 0).
    """
    if len(potentials) == 0:
        raise HpcnnpError("committee_evaluate: the committee is empty")
    energies, forces, n_warnings = [], [], 0
    for k, pot in enumerate(potentials):
        res = pot.compute(atoms, forces=True, stress=False)
        energies.append(res.energy)
        forces.append(res.forces)
        if k == 0:
            n_warnings = int(res.n_warnings)
    energies = np.asarray(energies, dtype=float)
    forces = np.asarray(forces, dtype=float)
    # moments of the differences to member 0 (the same numbers, but exactly 0 for
    # identical members and without cancellation for large forces)
    shifted = forces - forces[0]
    dev = shifted - shifted.mean(axis=0)
    sigma_atoms = np.sqrt((dev * dev).sum(axis=2).mean(axis=0))
    n = max(len(atoms), 1)
    e = (energies - energies[0]) / n
    return {"energies": energies, "forces": forces, "sigma_f_atoms": sigma_atoms,
            "sigma_f": float(sigma_atoms.max()) if len(sigma_atoms) else 0.0,
            "sigma_e": float(np.sqrt(np.mean((e - e.mean()) ** 2))),
            "n_warnings": n_warnings}


def committee_disagreement(potentials, atoms):
    """Committee disagreement of one structure.

    Parameters
    ----------
    potentials : sequence of hpcnnp.potential.Potential
    atoms : ase.Atoms

    Returns
    -------
    sigma_f_max : float, eV/Å
        max over atoms of sqrt(mean over members of |F_k,i − F̄_i|²).
    sigma_e : float, eV/atom
        Standard deviation of the members' energies per atom.
    n_warnings : int
        Extrapolation warnings of member 0.
    """
    r = committee_evaluate(potentials, atoms)
    return r["sigma_f"], r["sigma_e"], r["n_warnings"]


def load_committee(folders):
    """:class:`~hpcnnp.potential.Potential` of every member folder, in order."""
    from hpcnnp.potential import Potential

    return [Potential.from_n2p2(f) for f in folders]


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------

def _file_hash(path, h):
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def inputs_hash(*paths):
    """SHA-256 (hex, 16 characters) of the contents of files."""
    h = hashlib.sha256()
    for p in paths:
        _file_hash(p, h)
        h.update(b"\0")
    return h.hexdigest()[:16]


def prepare_member(folder, template, seed, test_fraction=None, epochs=None,
                   old_weights=None, scaling=None):
    """Write ``folder/input.nn`` of one committee member.

    Parameters
    ----------
    folder : path
        The member folder (created).
    template : path
        The campaign's input.nn.
    seed : int
        ``random_seed`` of the member (initial weights and train/test split).
    test_fraction : float, optional
    epochs : int, optional
    old_weights : path, optional
        A previous, trained member folder: warm start (``use_old_weights_short``)
        from its weights, carried over exactly (:func:`transfer_weights`: the new
        member, before any update, predicts what the old one predicts).
    scaling : path, optional
        The ``scaling.data`` the new member trains with (needed with
        ``old_weights``).
    """
    from hpcnnp.io import n2p2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = n2p2.read_settings(template)
    updates = {"random_seed": str(int(seed))}
    if test_fraction is not None:
        updates["test_fraction"] = repr(float(test_fraction))
    if epochs is not None:
        updates["epochs"] = str(int(epochs))
    if old_weights is not None:
        if scaling is None:
            raise HpcnnpError("prepare_member: a warm start needs the new scaling.data")
        updates.update(transfer_weights(old_weights, folder, scaling, settings))
        updates["use_old_weights_short"] = ""
    elif "use_old_weights_short" in settings:
        updates["use_old_weights_short"] = None
    n2p2.write_settings(folder / "input.nn", settings, updates, comment="hpcnnp active")
    return folder


def _scaling_affine(settings, old, new):
    """Per SF (α, β) with s_old = α s_new + β for one element's scaling rows
    (columns min, max, mean, sigma), so that W s_old = (α W) s_new + W β."""
    st = settings.scaling_type
    smin, smax = settings.scale_min, settings.scale_max
    if st == "none":
        return np.ones(len(old)), np.zeros(len(old))

    def factor_and_centre(table):
        gmin, gmax, gmean, gsig = np.asarray(table, dtype=float).T
        if st == "center":
            return np.ones_like(gmin), gmean
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (smax - smin) / (gsig if st == "scalesigma" else gmax - gmin)
        return np.where(np.isfinite(f), f, 0.0), gmin if st == "scale" else gmean

    f_old, c_old = factor_and_centre(old)
    f_new, c_new = factor_and_centre(new)
    shift = 0.0 if st == "center" else smin
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(f_new != 0.0, f_old / f_new, 0.0)
    # s_old = shift + f_old (G - c_old), G = c_new + (s_new - shift)/f_new; an SF without
    # spread in the new data (f_new = 0) is the constant G = c_new
    beta = shift + f_old * (c_new - c_old) - alpha * shift
    return alpha, beta


def transfer_weights(old_member, folder, scaling, settings):
    """Warm start that changes nothing: the old member's weights, re-expressed for the
    new member's SF scaling and energy normalisation.

    A committee retrained on a grown data set gets a new ``scaling.data`` (the SF
    ranges of the new data) and, with ``normalize_data_set``, new energy units.
    Copying the weights alone would change the network's inputs and outputs, so
    the warm start would begin from a different (worse) potential.  Instead:

    * first layer: with the scaled inputs s_old = α s_new + β (affine per SF, from
      the two scalings), connections a'_mn = α_m a_mn and biases
      b'_n = b_n + Σ_m β_m a_mn give exactly the old hidden-layer inputs;
    * normalisation: the old member's ``mean_energy``/``conv_energy``/``conv_length``
      are kept (written into the new input.nn, ``normalize_data_set`` removed).

    Parameters
    ----------
    old_member : path
        Trained member folder (input.nn, scaling.data, weights.ZZZ.data).
    folder : path
        The new member folder; its weights.ZZZ.data are written.
    scaling : path
        The new member's scaling.data.
    settings : hpcnnp.io.n2p2.Settings
        The new member's settings (SF list and network shape, as the old one's).

    Returns
    -------
    dict
        input.nn updates (normalisation keywords).
    """
    from hpcnnp.io import n2p2

    old_member, folder = Path(old_member), Path(folder)
    old_settings = n2p2.read_settings(old_member / "input.nn")
    n_sf = {el: len(v) for el, v in settings.symmetry_functions.items()}
    n_sf_old = {el: len(v) for el, v in old_settings.symmetry_functions.items()}
    if n_sf != n_sf_old or old_settings.elements != settings.elements:
        raise HpcnnpError(f"warm start from {old_member}: its symmetry functions "
                          f"({n_sf_old}) differ from the new member's ({n_sf})")
    els = settings.elements
    old_scaling = n2p2.read_scaling(old_member / "scaling.data", n_sf, els)
    new_scaling = n2p2.read_scaling(scaling, n_sf, els)
    for el in els:
        sizes = settings.layer_sizes(el)
        if sizes != old_settings.layer_sizes(el):
            raise HpcnnpError(f"warm start from {old_member}: network of {el} "
                              f"{old_settings.layer_sizes(el)} != {sizes}")
        name = n2p2.weights_filename(el)
        w = n2p2.read_weights(old_member / name, n2p2._n_connections(sizes)).copy()
        nin, nout = sizes[0], sizes[1]
        alpha, beta = _scaling_affine(settings, old_scaling[el], new_scaling[el])
        a = w[:nin * nout].reshape(nin, nout)
        bias = w[nin * nout:nin * nout + nout] + beta @ a
        w[:nin * nout] = (alpha[:, None] * a).ravel()
        w[nin * nout:nin * nout + nout] = bias
        n2p2.write_weights(folder / name, w, sizes)
    norm = old_settings.normalization
    updates = {"normalize_data_set": None} if "normalize_data_set" in settings else {}
    if norm is not None:
        for key, value in zip(("mean_energy", "conv_energy", "conv_length"), norm):
            updates[key] = repr(float(value))
    return updates


def member_done(folder, data, scaling):
    """The member's ``done.json`` if it is finished for these inputs, else None."""
    marker = Path(folder) / MEMBER_MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    key = _member_key(folder, data, scaling)
    return info if info.get("inputs") == key else None


def _member_key(folder, data, scaling):
    folder = Path(folder)
    settings = folder / "input.nn.bak" if (folder / "input.nn.bak").exists() \
        else folder / "input.nn"
    return inputs_hash(settings, data, scaling)


def train_member(folder, data, scaling, blas_threads=None):
    """Train one committee member in its folder (a Parsl task body).

    Parameters
    ----------
    folder : path
        Member folder with ``input.nn`` (see :func:`prepare_member`).
    data, scaling : path
        The iteration's ``input.data`` and ``scaling.data``.
    blas_threads : int, optional
        BLAS threads of the Kalman filter (default: the trainer's choice).

    Returns
    -------
    dict
        ``folder``, ``seed``, ``epochs``, ``errors`` (physical units: energy RMSE
        per atom in eV/atom and force RMSE in eV/Å, for ``train`` and ``test``),
        ``skipped`` (True when the member was already finished).
    """
    from hpcnnp.training.checkpoint import checkpoint_exists
    from hpcnnp.training.comm import Comm
    from hpcnnp.training.trainer import Trainer

    folder = Path(folder)
    done = member_done(folder, data, scaling)
    if done is not None:
        done["skipped"] = True
        return done
    key = _member_key(folder, data, scaling)
    (folder / MEMBER_MARKER).unlink(missing_ok=True)
    restart = checkpoint_exists(folder / "checkpoint")
    if not restart:
        bak = folder / "input.nn.bak"       # a normalised run rewrote input.nn: start over
        if bak.exists():
            os.replace(bak, folder / "input.nn")
    kwargs = dict(settings=folder / "input.nn", data=data, scaling=scaling,
                  output_dir=folder, comm=Comm(None), plots=True, stream=None,
                  blas_threads=blas_threads)
    try:
        summary = Trainer(restart=restart, **kwargs).run()
    except HpcnnpError:
        if not restart:
            raise
        shutil.rmtree(folder / "checkpoint", ignore_errors=True)   # stale checkpoint
        summary = Trainer(restart=False, **kwargs).run()
    units = summary["units"]
    from hpcnnp.training.dataset import Units
    u = Units(*units)
    errors = {}
    for prop, conv in (("energy", u.energy_metric_phys), ("force", u.force_metric_phys)):
        if prop not in summary["errors"]:
            continue
        metric = "RMSEpa" if prop == "energy" else "RMSE"
        values = {s: float(conv(summary["errors"][prop][s][metric]))
                  for s in ("train", "test")}
        # an empty test set gives NaN: stored as None (JSON has no NaN)
        errors[prop] = {s: v if np.isfinite(v) else None for s, v in values.items()}
    from hpcnnp.io import n2p2
    seed = n2p2.read_settings(folder / "input.nn").get("random_seed")
    info = {"folder": str(folder), "seed": None if seed is None else int(seed.split()[0]),
            "epochs": int(summary["epochs"]), "errors": errors, "inputs": key,
            "elapsed": float(summary["elapsed"])}
    write_atomic(folder / MEMBER_MARKER, json.dumps(info, indent=1))
    # the member is final (the marker makes re-runs skip it): its checkpoint -- the
    # Kalman covariance, 8 N_w^2 bytes, ~0.9 GB for the demo's 10-10 networks -- is
    # not needed any more
    shutil.rmtree(folder / "checkpoint", ignore_errors=True)
    info["skipped"] = False
    return info
