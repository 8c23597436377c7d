"""The typed configuration layer: one reader and one model per configuration file.

Every YAML file hpcnnp reads -- the project of the main job, sampling campaigns,
MD protocols, active-learning campaigns and site files -- goes through the same
steps:

1. :func:`~hpcnnp.config.yamlfile.read_yaml` parses it safely, refuses duplicate
   keys and keeps the line of every key;
2. a pydantic model of the file type (:mod:`.project`, :mod:`.campaign`,
   :mod:`.protocol`, :mod:`.active`, :mod:`.site`) checks every key, nested ones
   included: types, ranges and units (:mod:`.types`), the tables of hpcnnp
   (labelers, structure builders, sites, SF presets, n2p2 training keywords);
3. :func:`~hpcnnp.config.base.validate_document` turns every problem into one
   line ``FILE:LINE: full.key.path: problem (got VALUE)`` of an
   :class:`~hpcnnp.errors.InputFileError`.

The models also give the JSON Schema of each file type (:mod:`.schema`,
``docs/schema/``, ``hpcnnp config schema``).  n2p2's ``input.nn`` keeps n2p2's own
reader (:mod:`hpcnnp.io.n2p2`).

This package's ``__init__`` imports nothing: the stages import the model they
need (``from hpcnnp.config.campaign import CampaignFile``).
"""
