"""Trajectory analyses of hpcnnp (installed as :mod:`hpcnnp.analysis`).

Analyses follow the MDAnalysis pattern: ``Analysis(trajectory, ...).run(start,
stop, step, comm=None)`` fills ``.results`` (see :mod:`hpcnnp.analysis.base` for
the frame loop, MPI splitting and the single reduction).

==================================  ===============================================
:class:`Segregation`                 c(x)/c_bulk and Gibbs excess Γ at GBs/interfaces
:class:`LiDensity`                   Li probability density on a fractional 3-D grid
                                     (cube file, 2-D maps)
:class:`InterdiffusionProfiles`      number density of every species along the
                                     interface normal per time window
:class:`ClusterSizes`                cluster-size distribution of a species vs time
:class:`RDF`                         partial g(r), periodic, any cell shape
:class:`MSD`, :class:`Diffusivity`   MSD (FFT, unwrapped), D = slope/6 with block
                                     errors; :func:`arrhenius` for Ea and D0
:class:`VDOS`                        vibrational DOS per species from the VACF (THz)
==================================  ===============================================

Trajectories: an ``hpcnnp.io.h5md.H5MDTrajectory``, the path of an H5MD file, a
list of ``ase.Atoms`` or an :class:`ArrayTrajectory`.  Command line:
``hpcnnp analyze traj.h5 --segregation Co --li-density --rdf --msd Li``.
"""

from .base import AnalysisBase, AnalysisError, NotComputedError, Results
from .clusters import ClusterSizes
from .density import LiDensity
from .profiles import InterdiffusionProfiles
from .segregation import Segregation
from .structure import MSD, RDF, VDOS, Diffusivity, arrhenius
from .trajectory import ArrayTrajectory, TrajectoryError, as_trajectory

__all__ = ["AnalysisBase", "AnalysisError", "NotComputedError", "Results",
           "Segregation", "LiDensity", "InterdiffusionProfiles", "ClusterSizes", "RDF",
           "MSD", "Diffusivity", "arrhenius", "VDOS", "ArrayTrajectory", "as_trajectory",
           "TrajectoryError"]
