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
:class:`MinimumDistance`             smallest interatomic distance per frame
:class:`MSD`, :class:`Diffusivity`   MSD (FFT, unwrapped), D = slope/6 with block
                                     errors and a convergence verdict;
                                     :func:`arrhenius` for Ea and D0
:class:`VDOS`                        vibrational DOS per species from the VACF (THz)
==================================  ===============================================

Results that an MD run can be too short for carry a :class:`Verdict`
(``results.convergence``, ``results.converged``; :mod:`.convergence`): a diffusivity
outside the diffusive regime, a segregation excess that still drifts, are "not
converged" with the reason.

Trajectories: any member of hpcnnp's trajectory family (:mod:`hpcnnp.io.trajectory`:
``H5MDTrajectory``, :class:`ArrayTrajectory`), the path of an H5MD file or a list of
``ase.Atoms``.  Command line:
``hpcnnp analyze traj.h5md --segregation Co --li-density --rdf --msd Li``.
"""

from .base import AnalysisBase, AnalysisError, NotComputedError, Results
from .clusters import ClusterSizes
from .convergence import Verdict, diffusion_convergence, segregation_convergence
from .density import LiDensity
from .profiles import InterdiffusionProfiles
from .segregation import Segregation
from .structure import (MSD, RDF, VDOS, ArrheniusFit, Diffusivity, MinimumDistance,
                        arrhenius, first_peak)
from .trajectory import ArrayTrajectory, TrajectoryError, as_trajectory
from .pipeline import AnalysisRequest, analyze_trajectory  # noqa: E402  (uses the above)

__all__ = ["AnalysisBase", "AnalysisError", "NotComputedError", "Results",
           "Segregation", "LiDensity", "InterdiffusionProfiles", "ClusterSizes", "RDF",
           "MinimumDistance", "MSD", "Diffusivity", "arrhenius", "ArrheniusFit", "VDOS",
           "ArrayTrajectory", "as_trajectory", "TrajectoryError", "Verdict",
           "diffusion_convergence", "segregation_convergence", "first_peak",
           "AnalysisRequest", "analyze_trajectory"]
