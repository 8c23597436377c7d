"""The one YAML reader: duplicate keys, lines of nested keys, bad files."""

import pytest

from hpcnnp.active.config import load_config
from hpcnnp.config.yamlfile import parse_yaml, read_yaml
from hpcnnp.errors import InputFileError
from hpcnnp.hpc.sites import SiteError, load_site
from hpcnnp.md.protocol import parse_protocol
from hpcnnp.sampling.campaign import load_campaign
from hpcnnp.workflow.project import load_project

from _config_helpers import CAMPAIGNS, SITES, edit, line_of


def test_lines_of_nested_keys_and_list_items():
    text = ("a:\n  b:\n    - {c: 1, d: [2, 3]}\n    - e: 4\n"
            "      f:\n        g: 5\n")
    doc = parse_yaml(text, "x.yaml")
    assert doc.data == {"a": {"b": [{"c": 1, "d": [2, 3]}, {"e": 4, "f": {"g": 5}}]}}
    assert doc.line_of(("a", "b", 0, "d", 1)) == 3
    assert doc.line_of(("a", "b", 1, "e")) == 4
    assert doc.line_of(("a", "b", 1, "f", "g")) == 6
    assert doc.line_of(("a", "b", 1, "f", "missing")) == 5     # the mapping it belongs in
    assert doc.line_of(("nowhere",)) is None


@pytest.mark.parametrize("text, line, key", [
    ("a: 1\nb: 2\na: 3\n", 3, "a"),
    ("a:\n  b: 1\n  c: 2\n  b: 3\n", 4, "a.b"),
    ("s:\n  - {x: 1, x: 2}\n", 2, "s.0.x"),
])
def test_duplicate_keys_are_refused_with_both_lines(text, line, key):
    with pytest.raises(InputFileError) as info:
        parse_yaml(text, "d.yaml")
    assert info.value.line == line
    assert f"{key}: key given twice in one mapping (first on line" in str(info.value)


def test_a_merge_key_may_repeat():
    doc = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "m.yaml")
    assert doc.data["other"] == {"x": 1, "y": 2}


def test_bad_files(tmp_path):
    with pytest.raises(InputFileError, match=r"b\.yaml:2: not valid YAML"):
        parse_yaml("a: [1,\nb: }\n", "b.yaml")
    with pytest.raises(InputFileError, match="campaign file not found"):
        read_yaml(tmp_path / "none.yaml", "campaign file")
    (tmp_path / "latin.yaml").write_bytes(b"a: caf\xe9\n")
    with pytest.raises(InputFileError, match="not UTF-8"):
        read_yaml(tmp_path / "latin.yaml")
    with pytest.raises(InputFileError, match="found a directory"):
        read_yaml(tmp_path)


def test_every_file_type_refuses_duplicate_keys(tmp_path, project_text):
    """Issue #15: a duplicated key (e.g. temperatures) was silently dropped."""
    campaign = (CAMPAIGNS / "llzo_lco_laptop.yaml").read_text()
    bad = edit(campaign, "seed: 1\n", "seed: 1\nseed: 2\n")
    path = tmp_path / "c.yaml"
    path.write_text(bad)
    with pytest.raises(InputFileError, match=r"c\.yaml:\d+: seed: key given twice") as info:
        load_campaign(path)
    assert info.value.line == line_of(bad, "seed: 2")

    path = tmp_path / "project.yaml"
    path.write_text(edit(project_text, "  epochs: 8\n", "  epochs: 8\n  epochs: 9\n"))
    with pytest.raises(InputFileError, match="training.epochs: key given twice"):
        load_project(path)

    with pytest.raises(InputFileError, match="stages.0.T: key given twice"):
        parse_protocol("structure: a\npotential: p\nstages:\n  - {type: nvt, T: 1, T: 2, "
                       "time: 1}\n", tmp_path / "p.yaml")

    site = tmp_path / "frontier.yaml"
    site.write_text(edit((SITES / "frontier.yaml").read_text(), "  gpus: 8\n",
                         "  gpus: 8\n  gpus: 4\n"))
    with pytest.raises(SiteError, match="node.gpus: key given twice"):
        load_site(site)

    active = tmp_path / "active.yaml"
    active.write_text("data: a\ndata: b\n")
    with pytest.raises(InputFileError, match="data: key given twice"):
        load_config(active)
