"""CHGNet: the universal potential that ships inside its wheel (offline default).

B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023), doi:10.1038/s42256-023-00716-3.
A PBE(+U)-trained *teacher*, not DFT (see :mod:`hpcnnp.sampling.labelers`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import warnings

from .base import Labeler, _positive, _require_package

__all__ = ["ChgnetLabeler"]


_CHGNET_MODELS = {}


class ChgnetLabeler(Labeler):
    """CHGNet universal potential (offline; a PBE(+U)-trained *teacher*, not DFT)."""

    name = "chgnet"
    summary = "CHGNet universal potential (embedded default; PBE(+U)-trained stand-in, not DFT)"
    options = {"model": "0.3.0", "device": "cpu", "threads": 1, "stress": True,
               "timeout": None}
    runtime_options = ("device", "threads", "timeout")

    def validate(self):
        _positive(self, "threads")

    def check(self, elements=()):
        _require_package(self, "chgnet", "pip install torch==<cpu wheel> chgnet")

    def build(self, directory):
        self.check()
        import torch
        torch.set_num_threads(int(self.settings["threads"]))
        # chgnet converts a tensor that requires grad to a scalar on every call
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad",
                                category=UserWarning)
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator
        key = (self.settings["model"], self.settings["device"])
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            model = _CHGNET_MODELS.get(key)
            if model is None:   # one model per process (a Parsl worker runs many tasks)
                model = CHGNet.load(model_name=key[0], use_device=key[1], verbose=False)
                _CHGNET_MODELS[key] = model
            calc = CHGNetCalculator(model=model, use_device=self.settings["device"])
        return calc

    def versions(self):
        out = {}
        for pkg in ("chgnet", "torch"):
            with contextlib.suppress(Exception):
                out[pkg] = importlib.import_module(pkg).__version__
        return out
