"""``hpcnnp run --check``: every nested key of the project is checked, with the code
the stages use, and each problem names file, line and the full key path.

The four broken files of issue #13 (``training.epochs: eight``, a production
temperature of -1500 K, a negative campaign temperature, a dopant site ``Xx``) were
all "OK" before; the dopant site was only found after sampling had started.
"""

import pytest

from hpcnnp.cli import main
from hpcnnp.errors import InputFileError
from hpcnnp.workflow.project import load_project

from _config_helpers import EXAMPLE_PROJECT, FROZEN_PROJECT, edit, line_of, rejected

#: task hashes of the example project's sampling stage as planned at commit 5e66f06
#: (before the typed layer): hpcnnp run resumes a sampling stage of an earlier run
PROJECT_TASKS = [
    "19c628875424944a", "047473dd374dd4d1", "d57434179dd82d35", "280ce3d1794a4e0f",
    "bfe2ac1b9f6d974e", "ddd66c1c21efa216", "db001f4b916e6677", "52c683be1298fab1",
    "7f0fbcad3f712e49", "ae2b92ab937d9901", "cc3cc25036a8c036", "e5934a950cc0caee",
    "466987f8b5394029", "1166855bd63a6a14", "ea7a5511c35ff449", "479e9fb4c80dbdec",
    "7219f0d963269a8a", "c713c35e15f5091e", "f7fa27e38ba018bb", "78d91288f8c99183",
    "527f462919bc9571", "36d85f4b0be4a9c6", "c4f7efa52dce31d6", "488a315cc0022d23",
    "255dbd8e90d64306", "e9997ce3b29a8ce3",
]


FOUR_CASES = [
    ("  epochs: 8", "  epochs: eight", "training.epochs: must be a whole number (got 'eight')"),
    ("temperature: 1500,", "temperature: -1500,",
     "production.interface.temperature: must be > 0 K (got -1500)"),
    ("temperatures: [1000, 2000]", "temperatures: [1000, -2000]",
     "campaign.sampling.2.temperatures.1: must be > 0 K (got -2000)"),
    ("site: La, count: 8", "site: Xx, count: 8", "production.gb.dopant.site: must be a "
                                                 "chemical element symbol"),
]


@pytest.mark.parametrize("old, new, message", FOUR_CASES)
def test_run_check_rejects_the_four_broken_nested_keys(tmp_path, capsys, project_text,
                                                       old, new, message):
    text = edit(project_text, old, new)
    path = tmp_path / "project.yaml"
    path.write_text(text)
    assert main(["run", str(path), "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == f"hpcnnp run: error: {path}:{line_of(text, new)}: {message}" or \
        err[0].startswith(f"hpcnnp run: error: {path}:{line_of(text, new)}: {message}"), err[0]
    assert not (tmp_path / "run_llzo_lco").exists()


def test_run_check_accepts_the_example_and_prints_the_plan(capsys):
    assert main(["run", str(EXAMPLE_PROJECT), "--check"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "sample" in out and "md_gb" in out


@pytest.mark.parametrize("old, new, message", [
    ("site: La, count: 8", "site: Co, count: 8",
     "production.gb.dopant.site: 'Co' is not an element of the grain boundary's cell"),
    ("element: Co, site: La", "element: Fe, site: La",
     "production.gb.dopant.element: 'Fe' is not an element of the potential"),
    ("sigma: 13", "sigma: 14", "production.gb.sigma: must be one of 13, 17, 33 or 19"),
    ("zbl: {inner: 1.0, outer: 1.5}, temperature: 1500",
     "zbl: {inner: 1.5, outer: 1.0}, temperature: 1500",
     "production.interface.zbl.outer: must be larger than inner"),
    ('heat_time: "0.5 ps",\n              segment', 'heat_time: "0.1 fs",\n              segment',
     "production.interface.heat_time: must be at least one time step"),
    ("  force_weight: 1.0", "  force_weigth: 1.0",
     "training.force_weigth: unknown n2p2 training keyword; did you mean 'force_weight'?"),
    ("  force_weight: 1.0", "  force_weight: [1, 2]", "training.force_weight: must be a number"),
    ("  force_weight: 1.0", "  updater_type: 0",
     "training: hpcnnp train would refuse: gradient descent (updater_type 0) can only be "
     "combined with jacobian_mode 0 (as in n2p2) (jacobian_mode 1 is hpcnnp's default: set "
     "training.jacobian_mode to change it)"),
    ("{name: chgnet, threads: 1}", "{name: chgnet, thread: 1}",
     "labeler.thread: labeler chgnet has no option 'thread'"),
    ("stride: 10", "stride: 0", "active.exploration.stride: must be >= 1 (got 0)"),
    ("structures: [{builder: lco, repeat: [2, 2, 1]}]",
     "structures: [{builder: lco, repeat: [2, 2]}]",
     "active.exploration.structures.0.repeat: must be a list of three whole numbers"),
    ("{builder: lco}      ", "{builder: lcoo}     ",
     "campaign.structures.LCO.builder: unknown builder 'lcoo'"),
    ("interval: 10, snapshots_per_task: 2", "interval: 10.5, snapshots_per_task: 2",
     "campaign.md.interval: must be a whole number (got 10.5)"),
    ("  resources: {nodes: 1, workers_per_node: 2}", "  labeler: {name: xtb}",
     "campaign.labeler: is set by the project (top-level labeler:)"),
    ("segregation: Co", "segregation: Xx", "analysis.segregation: must be a chemical element"),
    ("segregation: Co", "segregation: Fe",
     "analysis.segregation: 'Fe' is not an element of the potential"),
    ("validation: {properties: [errors]}",
     "validation: {properties: [errors], reference_labeler: chgnot}",
     "validation.reference_labeler: unknown labeler 'chgnot'"),
    ("validation: {properties: [errors]}", "validation: {properties: [errors, speed]}",
     "validation.properties.1: must be one of 'errors'"),
    ("network: {hidden: [10, 10]", "network: {hidden: [10, 0]",
     "network.hidden.1: must be >= 1 (got 0)"),
    ("elements: [Li, La, Zr, O, Co]", "elements: [Li, La, Zr, O]",
     "elements: the production cell interface contains Co, which the potential lacks"),
    ("{builder: packing, composition: Li7La3Zr2O12, density: 4.8}",
     "{builder: packing, composition: Li7La3Zr2O11F2, density: 4.8}", None),
])
def test_more_nested_keys_name_file_line_and_path(tmp_path, project_text, old, new, message):
    text = edit(project_text, old, new)
    error = rejected(load_project, tmp_path / "project.yaml", text, InputFileError)
    if message is None:       # a sampled structure outside the potential's elements
        assert "campaign.sampling.1.structure: 'amorphous LLZO' contains F, which the " \
            "potential lacks (elements: Li, La, Zr, O, Co)" in str(error)
        assert error.line == line_of(text, "- {structure: amorphous LLZO")
        return
    assert message in str(error)
    # the line of the key named: the edited line, or the section a cross-key check names
    at = "training:" if message.startswith("training:") else \
        "elements:" if message.startswith("elements:") else new.splitlines()[0].strip()
    assert error.line == line_of(text, at)


def test_several_problems_are_reported_together(tmp_path, project_text):
    text = edit(edit(project_text, "temperature: 1500,", "temperature: -1500,"),
                "scale: 2.0", "scale: -2.0")
    path = tmp_path / "project.yaml"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        load_project(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:{line_of(text, 'scale: -2.0')}: scale: must be > 0")
    assert lines[1].startswith(f"{path}:{line_of(text, 'temperature: -1500')}: "
                               "production.interface.temperature")


def test_the_stages_read_what_the_check_checked(tmp_path, project_text):
    """The inputs of the stages come from the validated project (one code path)."""
    project = load_project(_write(tmp_path, project_text))
    protocol = project.md_protocol("gb", "structure.extxyz", tmp_path / "train")
    assert protocol["stages"][2] == {"type": "nvt", "T": 1200.0, "time": "1 ps"}
    assert protocol["zbl"] == {"inner": 1.0, "outer": 1.5}
    text = project.input_nn_text()
    assert "epochs 8\n" in text and "random_seed 12345\n" in text
    assert "short_force_fraction 0.2\n" in text and text.count("short_force_fraction") == 1
    camp = project.campaign_data()
    assert camp["labeler"] == {"name": "chgnet", "threads": 1} and camp["scale"] == 2.0
    cfg, iterations = project.active_data(tmp_path / "input.data", tmp_path / "input.nn")
    assert iterations == 1 and cfg["settings"] == str(tmp_path / "input.nn")
    assert cfg["site"] == "local" and "iterations" not in cfg


def test_a_false_flag_is_left_out_and_an_alias_replaces_the_default(tmp_path, project_text):
    text = edit(project_text, "  force_weight: 1.0", "  force_weight: 1.0\n"
                "  use_short_forces: false\n  energy_fraction: 0.5")
    project = load_project(_write(tmp_path, text))
    written = project.input_nn_text()
    assert "use_short_forces" not in written          # n2p2 reads a flag by presence
    assert "energy_fraction 0.5\n" in written and "short_energy_fraction" not in written


def _write(tmp_path, text):
    path = tmp_path / "project.yaml"
    path.write_text(text)
    return path


def test_the_sampling_stage_plans_the_same_tasks_as_before():
    assert [t.hash for t in load_project(FROZEN_PROJECT).sampling_tasks()] == PROJECT_TASKS
