"""Inputs of a training run: the structures of one rank and the initial weights.

:func:`load_structures` streams ``input.data`` once on every rank (validating every
structure as n2p2 would), decides the train/test split and the owner rank of every
structure (:mod:`~hpcnnp.training.schedule`) and keeps only the rank's own
structures as :class:`~hpcnnp.training.dataset.TrainStructure`.
:func:`initial_weights` draws n2p2's initial weights.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.io import n2p2
from hpcnnp.predict import count_structures
from hpcnnp.training.dataset import TrainStructure
from hpcnnp.training.schedule import distribute

__all__ = ["initial_weights", "settings_without_normalization", "LocalData",
           "load_structures", "read_old_weights"]

_NORM_KEYS = ("mean_energy", "conv_energy", "conv_length")


def settings_without_normalization(settings):
    """The same input.nn with mean_energy/conv_energy/conv_length blanked out: the
    C model then returns raw network outputs (training units); the trainer converts."""
    lines = []
    for raw in settings.lines:
        text = raw
        for mark in "#!":
            cut = text.find(mark)
            if cut >= 0:
                text = text[:cut]
        tok = text.split()
        lines.append("" if tok and tok[0] in _NORM_KEYS else raw)
    return n2p2.Settings(settings.path, lines).validate()


def _network_layers(w, sizes):
    """(W view (n_in × n_out), b view, n_in, n_out) per layer of a weight vector."""
    o = 0
    layers = []
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        W = w[o:o + nin * nout].reshape(nin, nout)
        o += nin * nout
        b = w[o:o + nout]
        o += nout
        layers.append((W, b, nin, nout))
    return layers


def initial_weights(settings, cfg, rng):
    """Random initial connections per element (n2p2-formats.md §8.3).

    Every connection uniform in [weights_min, weights_max) (all elements in element
    order, connections in weights-file order), then Nguyen–Widrow
    (``nguyen_widrow_weights_short``, including n2p2's quirk that only the first
    output-layer weight is halved) or Glorot–Bengio (tanh layers ×
    sqrt(6/(n_in + n_out))) with all biases set to zero.
    """
    raw = [cfg.weights_min + rng.random(settings.n_weights(el))
           * (cfg.weights_max - cfg.weights_min) for el in settings.elements]
    for el, w in zip(settings.elements, raw):
        acts = settings.activations[el]
        layers = _network_layers(w, settings.layer_sizes(el))
        if cfg.nguyen_widrow:
            for k, (W, b, nin, nout) in enumerate(layers[:-1]):
                beta = 0.7 * nout ** (1.0 / nin)
                norm = np.sqrt((W * W).sum(axis=0))
                W *= beta / norm
                b *= beta
                if acts[k] == "t":
                    W *= 2.0
                    b *= 2.0
            layers[-1][0][0, 0] *= 0.5
        else:
            for k, (W, b, nin, nout) in enumerate(layers):
                if acts[k] == "t":
                    W *= math.sqrt(6.0 / (nin + nout))
                b[:] = 0.0
    return raw


def read_old_weights(folder, settings, elements):
    """``use_old_weights_short``: weights.ZZZ.data of every element from ``folder``."""
    return [n2p2.read_weights(folder / n2p2.weights_filename(el), settings.n_weights(el))
            for el in elements]


@dataclass
class LocalData:
    """The data set as seen by one rank."""

    n_structures: int              # in the file
    owner: np.ndarray              # (N,) rank owning each structure
    is_train: np.ndarray           # (N,) bool
    n_atoms: np.ndarray            # (N,) atoms per structure
    structures: list               # this rank's TrainStructure objects
    tagged: int                    # structures with a set= tag

    def digest(self):
        """Hash of the distribution and split (checkpoints must match it)."""
        h = hashlib.sha256()
        h.update(self.owner.tobytes())
        h.update(self.is_train.tobytes())
        h.update(self.n_atoms.tobytes())
        return h.hexdigest()


def load_structures(path, elements, comm, streams, test_fraction, atom_energy):
    """Read ``path`` (input.data) on every rank; keep this rank's structures.

    The owner of every structure comes from ``streams.distribution`` and the split
    from ``streams.split`` (one number per structure in file order, so the split is
    the same for any number of ranks); a ``set=train|test`` tag overrides the draw.
    """
    if not path.is_file():
        raise InputFileError(path, None, "not a file" if path.exists() else
                             "file not found")
    n_total = comm.bcast(count_structures(path) if comm.rank == 0 else None)
    if n_total == 0:
        raise InputFileError(path, None, "no structures (no 'begin' line)")
    owner = distribute(n_total, comm.size, streams.distribution)
    u = streams.split.random(n_total)
    is_train = np.zeros(n_total, dtype=bool)
    n_atoms = np.zeros(n_total, dtype=np.int64)
    structures = []
    tagged = 0
    index = {el: i for i, el in enumerate(elements)}
    for k, atoms in enumerate(n2p2.iter_data(path, elements)):
        if k >= n_total:
            raise InputFileError(path, None, "structure count changed while reading")
        tag = atoms.info.get("set")
        if tag is not None:
            tagged += 1
            train = tag == "train"
        else:
            train = not (u[k] < test_fraction)
        is_train[k] = train
        n_atoms[k] = len(atoms)
        if len(atoms) == 0:
            raise InputFileError(path, atoms.info.get("n2p2_line"),
                                 f"structure {k} has no atoms")
        if owner[k] == comm.rank:
            elem = [index[s] for s in atoms.get_chemical_symbols()]
            structures.append(TrainStructure(k, len(structures), atoms, elem, train,
                                             len(elements), atom_energy))
    if not is_train.any():
        raise HpcnnpError(f"{path}: empty training set ({n_total} structures, all in the "
                          "test set: check test_fraction and set= tags)")
    return LocalData(n_total, owner, is_train, n_atoms, structures, tagged)
