"""Reference calculators ("labelers"): a table of ASE calculator factories.

A labeler turns a structure into the reference energy, forces and (optionally)
stress that the HDNNP is trained on.  Each entry of :data:`LABELERS` is a class
that knows its options and their defaults, checks that its program and data are
there, and builds an ASE calculator; :func:`get_labeler` returns that
calculator wrapped in a :class:`LabelerCalculator`, which

* evaluates energy, forces and stress in one call and checks them (finite
  numbers, right shapes) -- a NaN never reaches a data set;
* turns every failure of the program (SCF not converged, crash, timeout, NaN)
  into a :class:`LabelingError` naming the labeler, so that a campaign can
  record the task as failed and go on;
* carries ``settings`` (every option, defaults filled in) for the provenance of
  each labelled structure and for the task hashes of a campaign.

>>> calc = get_labeler("chgnet", threads=1)                   # doctest: +SKIP
>>> atoms.calc = calc; atoms.get_forces()                     # doctest: +SKIP
>>> calc.settings                                             # doctest: +SKIP
{'name': 'chgnet', 'model': '0.3.0', 'device': 'cpu', 'threads': 1, 'stress': True}

The labelers
============

``chgnet`` (default, embedded)
    The CHGNet universal potential (B. Deng et al., Nat. Mach. Intell. 5, 1031
    (2023), doi:10.1038/s42256-023-00716-3).  Its weights ship inside the
    ``chgnet`` wheel, so it works offline on a laptop.  **It is not DFT**: it is
    a graph network fitted to the Materials Project trajectory set (PBE and
    PBE+U, U(Co) = 3.32 eV for oxides), i.e. a *teacher* that stands in for the
    reference method so that the whole pipeline can run end to end.  A
    potential trained on CHGNet labels reproduces CHGNet, not PBE; use ``cp2k``
    or ``vasp`` for publishable reference data.
``xtb``
    GFN1-xTB (C. Bannwarth et al., WIREs Comput. Mol. Sci. 11, e1493 (2021),
    doi:10.1002/wcms.1493) through tblite's ASE calculator.  Defaults that
    converge on Co-doped LLZO with periodic cells: electronic temperature
    3000 K (Fermi smearing), Broyden mixer damping 0.2, 300 SCF iterations;
    tblite's periodic code is Γ-point only.  (GFN2 did not converge on Co-doped
    LLZO in 300 iterations on our tests.)  Cheap tight binding, again not DFT.
``cp2k``
    Kohn-Sham DFT with CP2K's Quickstep (GPW): PBE, GTH pseudopotentials
    (GTH-PBE-qN), DZVP-MOLOPT-SR-GTH basis sets (BASIS_MOLOPT; La from
    BASIS_MOLOPT_UCL), plane-wave cutoff 400 Ry / relative cutoff 50 Ry, Γ only.
    SCF by orbital transformation (``scf: ot``, insulators, fastest) or by
    diagonalisation with Fermi-Dirac smearing and Broyden mixing
    (``scf: smearing``, robust for the metallic snapshots of hot melts); UKS
    with the lowest multiplicity when the cell has an odd number of electrons;
    ASPC wavefunction extrapolation (the CP2K shell stays alive for a whole
    trajectory, so successive MD steps start from extrapolated orbitals);
    analytic stress.  The input is written here (:meth:`Cp2kLabeler.input_text`)
    and run through ASE's ``cp2k_shell`` calculator.  An SCF that does not
    converge is a :class:`LabelingError` (never a silently unconverged label).
``vasp`` / ``espresso``
    ASE's calculators for users who have the programs: the options are passed
    through; a missing program or pseudopotential is an error at set-up.
``emt``
    ASE's EMT (Al, Cu, Ag, Au, Ni, Pd, Pt, H, C, N, O), for tests only.
``hdnnp``
    An n2p2 potential folder (``potential: DIR``) evaluated by hpcnnp's own
    engine: distillation from a larger model, and tests with a known teacher.
``python``
    Any ASE calculator: ``factory: "module:function"`` or
    ``"path/to/file.py:function"`` (called with ``kwargs``), e.g. a committee
    HDNNP or another machine-learned potential.  Such a factory is *code* that a
    YAML file makes hpcnnp run.

MPI launch
----------
``cp2k``, ``vasp`` and ``espresso`` take ``launcher`` (a command prefix with
``{ranks}`` and ``{threads}`` filled in, e.g. ``"srun -n {ranks} --cpu-bind=cores"``
or ``"mpirun -np {ranks}"``), ``ranks`` and ``threads`` (``OMP_NUM_THREADS`` of
the program).  A campaign can instead set the prefix from its site
(``launcher: site`` -> :meth:`hpcnnp.hpc.sites.Site.mpi_command`).  The MPI of
the launcher must be the one the program was built with (Debian's ``cp2k`` uses
Open MPI's ``mpirun``, not the ``mpich`` wheel's ``mpiexec``).

Extending
---------
A new labeler is a module of this package with a :class:`Labeler` subclass,
added to :data:`LABELERS` (one line): ``options`` (name -> default),
``check()`` (program/data present) and ``build(directory)`` (the ASE
calculator); optionally ``after(calc)`` to inspect the program's output for
failures.  See ``docs/extending.md``.
"""

from __future__ import annotations

import numpy as np

from .base import Labeler, LabelerCalculator, LabelerError, LabelingError
from .chgnet import ChgnetLabeler
from .cp2k import Cp2kLabeler
from .emt import EmtLabeler
from .espresso import EspressoLabeler
from .hdnnp import HdnnpLabeler
from .python import PythonLabeler
from .vasp import VaspLabeler
from .xtb import XtbLabeler

__all__ = ["LabelingError", "LabelerError", "Labeler", "LabelerCalculator", "LABELERS",
           "DEFAULT_LABELER", "get_labeler", "make_labeler", "labeler_settings",
           "single_point", "ChgnetLabeler", "XtbLabeler", "Cp2kLabeler", "VaspLabeler",
           "EspressoLabeler", "EmtLabeler", "PythonLabeler", "HdnnpLabeler"]

#: labeler name -> class; the one place a new reference method is added
LABELERS = {cls.name: cls for cls in (ChgnetLabeler, XtbLabeler, Cp2kLabeler, VaspLabeler,
                                      EspressoLabeler, EmtLabeler, HdnnpLabeler,
                                      PythonLabeler)}

#: the labeler used when a campaign does not name one
DEFAULT_LABELER = "chgnet"


def make_labeler(name, **options):
    """The :class:`Labeler` (settings checked, nothing started) of *name*.

    Raises
    ------
    HpcnnpError
        Unknown name (the message lists the known labelers) or bad options.
    """
    key = str(name).strip().lower()
    if key not in LABELERS:
        raise LabelerError(f"unknown labeler {name!r}; known labelers: "
                           + ", ".join(f"{k} ({c.summary})" for k, c in LABELERS.items()))
    return LABELERS[key](**options)


def labeler_settings(name, **options):
    """Settings (defaults filled in) of a labeler, without starting anything."""
    return dict(make_labeler(name, **options).settings)


def get_labeler(name, directory=None, **options):
    """An ASE calculator for the labeler *name* (a :class:`LabelerCalculator`).

    Parameters
    ----------
    name : str
        Key of :data:`LABELERS` (``chgnet``, ``xtb``, ``cp2k``, ``vasp``,
        ``espresso``, ``emt``, ``hdnnp``, ``python``).
    directory : str or path, optional
        Working folder of file-based programs (default: a temporary folder).
    **options
        The labeler's options (see the classes).

    Raises
    ------
    HpcnnpError
        Unknown labeler (lists the known ones), unknown option, missing program.
    """
    labeler = make_labeler(name, **options)
    labeler.check()
    return labeler.calculator(directory=directory)


def single_point(atoms, calc):
    """Energy (force-consistent), forces and stress (or None) of *atoms* with *calc*.

    Returns
    -------
    dict
        ``energy`` (eV), ``forces`` (N, 3) eV/Å, ``stress`` (6,) eV/Å^3 Voigt
        (ASE's sign) or None.
    """
    work = atoms.copy()
    work.calc = calc
    energy = float(work.get_potential_energy(force_consistent=True)
                   if "free_energy" in calc.implemented_properties
                   else work.get_potential_energy())
    forces = np.array(work.get_forces(), dtype=float)
    stress = None
    if "stress" in calc.results:
        stress = np.array(calc.results["stress"], dtype=float)
    return {"energy": energy, "forces": forces, "stress": stress}
