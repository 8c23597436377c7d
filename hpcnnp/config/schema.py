"""JSON Schemas of the configuration files, generated from the typed models.

Point an editor at ``docs/schema/<kind>.schema.json`` (e.g. with the YAML
language server: ``# yaml-language-server: $schema=../../docs/schema/project.schema.json``
as the first line of a project file) to get completion, the documentation of
every key and its range while typing.  The committed files are regenerated with
``hpcnnp config schema --write docs/schema``; a test keeps them in sync with the
models.  The schema checks types and ranges; the checks that need other files
(site files, the labeler table, file paths) are made by ``hpcnnp config check``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hpcnnp.config.active import ActiveFile
from hpcnnp.config.campaign import CampaignFile
from hpcnnp.config.project import ProjectFile
from hpcnnp.config.protocol import ProtocolFile
from hpcnnp.config.site import SiteFile

__all__ = ["FILE_TYPES", "json_schema", "schema_text", "write_schemas"]

#: file type -> (model, what the file is); the one place a file type is added
FILE_TYPES = {
    "project": (ProjectFile, "project file of the main job (hpcnnp run)"),
    "campaign": (CampaignFile, "sampling campaign (hpcnnp sample)"),
    "protocol": (ProtocolFile, "MD protocol (hpcnnp md)"),
    "active": (ActiveFile, "active-learning campaign (hpcnnp active)"),
    "site": (SiteFile, "computing site (jobs/sites/NAME.yaml)"),
}

_BASE_URI = "https://hpcnnp.invalid/schema/"


def json_schema(kind):
    """The JSON Schema (a dict) of file type *kind* (a key of :data:`FILE_TYPES`)."""
    model, what = FILE_TYPES[kind]
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{_BASE_URI}{kind}.schema.json",
            "title": f"hpcnnp {what}", **{k: v for k, v in schema.items() if k != "title"}}


def schema_text(kind):
    """:func:`json_schema` as the text of the committed file."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write_schemas(folder):
    """Write ``<kind>.schema.json`` of every file type into *folder*; the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in FILE_TYPES:
        path = folder / f"{kind}.schema.json"
        path.write_text(schema_text(kind), encoding="utf-8")
        paths.append(path)
    return paths
