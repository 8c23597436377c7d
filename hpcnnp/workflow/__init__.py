"""The main job: ``hpcnnp run project.yaml`` runs every stage of the pipeline
(structures and labels, SFs, scaling, training, validation, active learning,
production MD, analysis) and writes one report; see :mod:`hpcnnp.workflow.stages`."""

from hpcnnp.workflow.project import SCHEMA, Project, load_project  # noqa: F401
