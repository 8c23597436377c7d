"""An HDNNP (n2p2 potential folder) as the reference: distillation from a larger
model, and tests with a known "teacher" (active learning, recovery benchmarks)."""

from __future__ import annotations

from pathlib import Path

from .base import Labeler, LabelerError

__all__ = ["HdnnpLabeler"]


class HdnnpLabeler(Labeler):
    """An n2p2 potential folder (``input.nn``, ``scaling.data``, ``weights.ZZZ.data``)
    evaluated by hpcnnp's engine (:class:`hpcnnp.calculator.HDNNPCalculator`)."""

    name = "hdnnp"
    summary = "an n2p2 potential folder evaluated by hpcnnp's engine (teacher/distillation)"
    options = {"potential": None, "warn_extrapolation": False, "stress": True,
               "timeout": None}
    runtime_options = ("warn_extrapolation", "timeout")

    def validate(self):
        if not isinstance(self.settings["potential"], (str, Path)):
            raise LabelerError("labeler hdnnp: option potential must be the folder of an n2p2 "
                               "potential ({potential: DIR})")
        self.settings["potential"] = str(self.settings["potential"])

    def check(self, elements=()):
        folder = Path(self.settings["potential"])
        if not folder.is_dir():
            raise LabelerError(f"labeler hdnnp: potential folder not found: {folder}")

    def build(self, directory):
        # imported here: sampling with the other labelers works without the compiled core
        from hpcnnp.calculator import HDNNPCalculator

        self.check()
        return HDNNPCalculator(self.settings["potential"],
                               warn_extrapolation=self.settings["warn_extrapolation"])
