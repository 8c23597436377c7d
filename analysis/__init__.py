"""Trajectory analyses of hpcnnp (installed as :mod:`hpcnnp.analysis`).

Analyses follow the MDAnalysis pattern: ``Analysis(trajectory, ...).run(start,
stop, step)`` fills ``.results``.  The analyses themselves (Co segregation, Li
probability density, RDF, MSD, vDOS) arrive with the analysis stage.
"""
