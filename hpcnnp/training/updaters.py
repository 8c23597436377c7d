"""Weight updaters: the Kalman filter (:mod:`hpcnnp.training.kalman`, decoupled:
:mod:`hpcnnp.training.decoupled`) and n2p2's
gradient descent (fixed step or Adam), behind one interface:

``update(w, H, xi)`` (w changed in place), ``status_line(epoch)``,
``status_header()``, ``state_dict()`` / ``load_state_dict()``.
"""

from __future__ import annotations

import math

import numpy as np

from hpcnnp.training.decoupled import DecoupledKalmanFilter
from hpcnnp.training.kalman import KalmanFilter

__all__ = ["GradientDescent", "make_updater", "file_header"]


def file_header(title, cols):
    """n2p2's ``createFileHeader``: ``title`` (str or list of lines), ``cols`` a list
    of (name, description, width).  Returns the lines (with newlines)."""
    titles = [title] if isinstance(title, str) else list(title)
    width = max(len(name) for name, _, _ in cols)
    rule = "#" * 80
    lines = [rule] + [f"# {t}" for t in titles] + [rule,
                                                   f"# {'Col':<4} {'Name':<{width}} Description",
                                                   rule]
    for i, (name, info, _) in enumerate(cols, 1):
        lines.append(f"# {i:<4} {name:<{width}} {info}")
    nums = "".join(f" {i:>{w}}" for i, (_, _, w) in enumerate(cols, 1))
    names = "".join(f" {name:>{w}}" for name, _, w in cols)
    # n2p2: the rule above the column numbers is at least 80 wide, the one below
    # exactly as wide as the column lines
    lines += ["#" * max(80, len(nums) - 1), "#" + nums[2:], "#" + names[2:],
              "#" * (len(nums) - 1)]
    return [line + "\n" for line in lines]


class GradientDescent:
    """n2p2's GradientDescent updater (``updater_type 0``).

    Fixed step: w ← w + η ξ h.  Adam: g = −ξ h, m ← β₁m + (1−β₁)g,
    v ← β₂v + (1−β₂)g², η_t = η₀ √(1−β₂ᵗ)/(1−β₁ᵗ), w ← w − η_t m/(√v + ε).
    Needs ``jacobian_mode 0`` (one row).
    """

    FIXED, ADAM = 0, 1

    def __init__(self, n_weights, kind, eta, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.n_weights = int(n_weights)
        self.kind = int(kind)
        self.eta = float(eta)
        self.eta0 = float(eta)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.beta1t, self.beta2t = self.beta1, self.beta2
        self.m = np.zeros(self.n_weights) if self.kind == self.ADAM else None
        self.v = np.zeros(self.n_weights) if self.kind == self.ADAM else None
        self.n_updates = 0

    def update(self, w, H, xi):
        h = np.asarray(H, dtype=float).reshape(self.n_weights, -1)[:, 0]
        err = float(np.asarray(xi).ravel()[0])
        if self.kind == self.FIXED:
            w += self.eta * err * h
        else:
            g = -err * h
            self.m *= self.beta1
            self.m += (1.0 - self.beta1) * g
            self.v *= self.beta2
            self.v += (1.0 - self.beta2) * g * g
            self.eta = self.eta0 * math.sqrt(1.0 - self.beta2t) / (1.0 - self.beta1t)
            w -= self.eta * self.m / (np.sqrt(self.v) + self.epsilon)
            self.beta1t *= self.beta1
            self.beta2t *= self.beta2
        self.n_updates += 1

    def status_line(self, epoch):
        s = "%10d %16.8E" % (epoch, self.eta)
        if self.kind == self.ADAM:
            s += " %16.8E %16.8E %16.8E %16.8E" % (
                self.beta1t, self.beta2t, float(np.abs(self.m).mean()),
                float(np.abs(self.v).mean()))
        return s + "\n"

    def status_header(self):
        cols = [("epoch", "Training epoch.", 10), ("eta", "Step size.", 16)]
        if self.kind == self.ADAM:
            cols += [("beta1t", "Decay rate 1 to the power of t.", 16),
                     ("beta2t", "Decay rate 2 to the power of t.", 16),
                     ("mag_m", "Mean of absolute first momentum (m).", 16),
                     ("mag_v", "Mean of absolute second momentum (v).", 16)]
        return file_header("Gradient descent status report.", cols)

    def memory_bytes(self):
        return 0 if self.m is None else 2 * self.m.nbytes

    def state_dict(self):
        st = {"kind": self.kind, "eta": self.eta, "beta1t": self.beta1t,
              "beta2t": self.beta2t, "n_updates": self.n_updates}
        if self.m is not None:
            st["m"] = self.m.copy()
            st["v"] = self.v.copy()
        return st

    def load_state_dict(self, st):
        self.eta = float(st["eta"])
        self.beta1t = float(st["beta1t"])
        self.beta2t = float(st["beta2t"])
        self.n_updates = int(st["n_updates"])
        if self.m is not None:
            self.m[:] = st["m"]
            self.v[:] = st["v"]


def make_updater(cfg, n_weights, updates_per_epoch, comm, distributed=True,
                 fold_every=16, groups=None):
    """The updater of ``cfg`` (:class:`TrainConfig`) for a state of ``n_weights``;
    ``groups``: decoupled Kalman filter with these index ranges (more than one)."""
    if cfg.updater_type == 1:
        k = dict(cfg.kalman, updates_per_epoch=updates_per_epoch, comm=comm,
                 distributed=distributed, fold_every=fold_every)
        if groups is not None and len(groups) > 1:
            return DecoupledKalmanFilter(groups, **k)
        return KalmanFilter(n_weights, **k)
    g = cfg.gradient
    if g["type"] == 0:
        return GradientDescent(n_weights, 0, g["eta"])
    return GradientDescent(n_weights, 1, g["eta"], g["beta1"], g["beta2"], g["epsilon"])
