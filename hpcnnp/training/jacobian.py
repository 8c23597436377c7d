"""Errors and Jacobian rows of update candidates (n2p2-formats.md §10.5).

All quantities are in training units (offsets removed, normalised).

Energy candidate (structure s)
    prediction E = Σ_i out_i (network outputs), error ξ = E_ref − E; the
    Jacobian row is ∂E/∂w = Σ_i ∂out_i/∂w, non-zero only in the weight block of
    each atom's element.  Computed by the C kernel
    ``Model.network_gradients(e, Gs_e)`` (sum over the atoms of element e).

Force candidate (structure s, atom a, component c)
    F_ac = −∂E/∂r*_ac = −(1/c_L) Σ_i Σ_k (∂out_i/∂G̃_ik) s_k (∂G_ik/∂r_ac)
    (G̃ = scaled SFs, s = SF scaling factor of §7, r* = c_L r internal
    positions).  Only atoms i that have a among their neighbour slots (a itself
    included, every periodic image counted) contribute (their SFs and
    Σ_{slots of i that are atom a} ∂G_i/∂r_slot are an
    :class:`~hpcnnp.training.dataset.AtomSF`).  With the direction
    vector v_i = s ⊙ Σ_{slots of i that are atom a} ∂G_i/∂r_{slot,c}, the
    prediction is F_ac = −(1/c_L) Σ_i v_i·∂out_i/∂G̃ and the Jacobian row is
    ∂F_ac/∂w = −(1/c_L) Σ_i ∂(v_i·∂out_i/∂G̃)/∂w — one call of
    ``Model.network_gradients(e, Gs_sel, V)`` per element (forward-over-reverse
    differentiation in C, one pass over the selected atoms) returns both.

``force_weight`` multiplies ξ and the row of force candidates (done by the
caller, as is the per-element split of US_ELEMENT).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Networks", "energy_terms", "force_terms"]


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -35.0, 35.0)))


_ACT = {
    "l": lambda x: x,
    "t": np.tanh,
    "s": lambda x: np.where(x > 35.0, 1.0, np.where(x < -35.0, 0.0, _logistic(x))),
    "p": lambda x: np.where(x > 35.0, x, np.where(x < -35.0, 0.0,
                                                  np.log1p(np.exp(np.clip(x, -35, 35))))),
    "r": lambda x: np.maximum(x, 0.0),
    "g": lambda x: np.exp(-0.5 * x * x),
    "c": np.cos,
    "S": lambda x: np.where(x > 35.0, 0.0, np.where(x < -35.0, 1.0, 1.0 - _logistic(x))),
    "e": lambda x: np.exp(-x),
    "h": lambda x: x * x,
}


class Networks:
    """The trained networks: weight views per element and a numpy forward pass.

    Parameters
    ----------
    potential : Potential
        Its C model receives every weight change (:meth:`push`).
    layer_sizes, activations : dict element -> list
    weights : list of 1-D arrays
        Per element, views into the updaters' state vectors (kept current by
        the updaters, which change them in place).
    """

    def __init__(self, potential, weights):
        st = potential.settings
        self.model = potential._model
        self.elements = list(potential.elements)
        self.sizes = [st.layer_sizes(el) for el in self.elements]
        self.acts = [st.activations[el] for el in self.elements]
        self.normalize_nodes = bool(st.normalize_nodes)
        self.weights = weights
        self.n_weights = [int(w.size) for w in weights]

    def push(self):
        """Copy the current weights into the C model."""
        for e, w in enumerate(self.weights):
            self.model.set_weights(e, w)

    def layers(self, e):
        """(W (n_in × n_out), b) views per layer of element e."""
        w = self.weights[e]
        out, o = [], 0
        sizes = self.sizes[e]
        for nin, nout in zip(sizes[:-1], sizes[1:]):
            W = w[o:o + nin * nout].reshape(nin, nout)
            o += nin * nout
            b = w[o:o + nout]
            o += nout
            out.append((W, b))
        return out

    def forward(self, e, gs, preact=False):
        """Network outputs of element e for scaled SFs gs (n, nsf); with
        ``preact`` also the pre-activation values of every layer (neuron stats)."""
        y = gs
        xs = []
        sizes = self.sizes[e]
        for k, (W, b) in enumerate(self.layers(e)):
            x = y @ W + b
            if self.normalize_nodes:
                x = x / sizes[k]
            if preact:
                xs.append(x)
            y = _ACT[self.acts[e][k]](x)
        out = y[:, 0] if y.ndim == 2 else y
        return (out, xs) if preact else out


def energy_terms(nets, sf):
    """(E_nnp, [∂E/∂w per element or None]) of one structure (training units)."""
    energy = 0.0
    grads = []
    for e, gs in enumerate(sf.gs):
        if len(gs) == 0:
            grads.append(None)
            continue
        energy += float(nets.forward(e, gs).sum())
        go, _, _ = nets.model.network_gradients(e, gs)
        grads.append(go)
    return energy, grads


def force_terms(nets, asf, comp, scale, inv_conv_length):
    """(F_nnp,a,c, [∂F/∂w per element or None]) in training units.

    Parameters
    ----------
    nets : Networks
    asf : AtomSF
        SFs and dG/dr_a of the atoms that depend on atom a
        (:meth:`~hpcnnp.training.dataset.SFCache.atom`).
    comp : int
        Cartesian component c.
    scale : list of (nsf_e,) arrays
        SF scaling factors per element.
    inv_conv_length : float
        1/c_L.
    """
    force = 0.0
    grads = [None] * len(asf.gs)
    for e, owners in enumerate(asf.owners):
        if len(owners) == 0:
            continue
        V = asf.dg[e][:, :, comp] * scale[e]
        _, gd, D = nets.model.network_gradients(e, asf.gs[e], V)
        force -= float(D.sum())
        grads[e] = gd * (-inv_conv_length)
    return force * inv_conv_length, grads
