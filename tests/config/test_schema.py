"""The JSON Schemas users point their editors at: generated from the models, kept in
sync with docs/schema/, and in agreement with the validators on real files."""

import json

import pytest
import yaml
from _config_helpers import CAMPAIGNS, EXAMPLE_PROJECT, FROZEN_PROJECT, REPO, SITES, edit

from hpcnnp.cli import main
from hpcnnp.config.schema import FILE_TYPES, json_schema, schema_text

jsonschema = pytest.importorskip("jsonschema")


@pytest.mark.parametrize("kind", list(FILE_TYPES))
def test_committed_schema_is_up_to_date(kind):
    path = REPO / "docs" / "schema" / f"{kind}.schema.json"
    assert path.is_file(), f"{path} missing: hpcnnp config schema --write docs/schema"
    assert path.read_text(encoding="utf-8") == schema_text(kind), (
        f"{path} is out of date with the model: run hpcnnp config schema --write docs/schema")


def _validator(kind):
    schema = json_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_files_are_valid_under_their_schema():
    _validator("project").validate(yaml.safe_load(EXAMPLE_PROJECT.read_text()))
    for path in CAMPAIGNS.glob("*.yaml"):
        _validator("campaign").validate(yaml.safe_load(path.read_text()))
    for path in SITES.glob("*.yaml"):
        _validator("site").validate(yaml.safe_load(path.read_text()))
    project = yaml.safe_load(EXAMPLE_PROJECT.read_text())
    active = dict(project["active"], data="input.data", settings="input.nn",
                  labeler=project["labeler"])
    active.pop("iterations")
    _validator("active").validate(active)


def test_protocol_written_by_the_main_job_is_valid_under_the_schema(tmp_path):
    from hpcnnp.workflow.project import load_project
    protocol = load_project(EXAMPLE_PROJECT).md_protocol("gb", "structure.extxyz", tmp_path)
    _validator("protocol").validate(json.loads(json.dumps(protocol)))


@pytest.mark.parametrize("old, new", [
    ("temperature: 1500,", "temperature: -1500,"),
    ("  epochs: 8", "  epochs: eight"),
    ("  force_weight: 1.0", "  force_weigth: 1.0"),
    ("network: {hidden", "netwerk: {hidden"),
])
def test_schema_flags_what_the_validator_refuses(old, new):
    data = yaml.safe_load(edit(FROZEN_PROJECT.read_text(), old, new))
    assert list(_validator("project").iter_errors(data))


def test_config_schema_command(tmp_path, capsys):
    assert main(["config", "schema", "site", "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"].startswith("hpcnnp")
    assert main(["config", "schema", "--write", str(tmp_path / "all")]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(
        f"{k}.schema.json" for k in FILE_TYPES)
    assert main(["config", "keys", "protocol"]) == 0
    assert "stages" in capsys.readouterr().out
    assert main(["config", "check", str(EXAMPLE_PROJECT)]) == 0
    assert main(["config", "check", str(CAMPAIGNS / "llzo_lco_laptop.yaml")]) == 0
    assert main(["config", "check", str(SITES / "flux.yaml")]) == 0
