"""Sampling stage: label structures with a reference method ("labeler").

* :mod:`.labelers` -- the table of reference calculators (``chgnet``, ``xtb``,
  ``cp2k``, ``vasp``, ``espresso``, ...), :func:`~.labelers.get_labeler`.
* :mod:`.aimd` -- NVT molecular dynamics with a labeler, snapshots every k steps
  after equilibration, resumable (checkpoint per trajectory).
* :mod:`.campaign` -- a YAML campaign (structure classes x temperatures x
  snapshot counts) dispatched as idempotent Parsl tasks and merged into one
  HDF5 data set (:mod:`hpcnnp.io.dataset`) by a single writer.

Command line: ``hpcnnp sample campaign.yaml`` and ``hpcnnp dataset ...``.
"""

from .labelers import LABELERS, LabelingError, get_labeler, make_labeler  # noqa: F401

__all__ = ["LABELERS", "LabelingError", "get_labeler", "make_labeler"]
