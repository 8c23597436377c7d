"""One test per configuration file type (campaign, protocol, active, site; the
project has test_project_check.py): the shipped files are valid, broken ones name
file, line and the full key path of every problem."""

import shutil

import pytest
from _config_helpers import CAMPAIGNS, SITES, edit, line_of, rejected

from hpcnnp.active.config import load_config
from hpcnnp.cli import main
from hpcnnp.errors import InputFileError
from hpcnnp.hpc.sites import SiteError, list_sites, load_site
from hpcnnp.md.protocol import load_protocol, parse_protocol
from hpcnnp.sampling.campaign import load_campaign

# ----------------------------------------------------------------------------- campaign

#: task hashes of examples/campaigns/llzo_lco_laptop.yaml as planned by the loader of
#: commit 5e66f06 (before the typed layer): a finished task folder of an earlier run is
#: found again, so --resume keeps working across the change
LAPTOP_HASHES = ["15d5ace8b954b7d4", "8080535c03ae5f15", "a72a790cd6407f47",
                 "f39087284fbf3ace", "c497eac4ac247550", "d28ef6504d4d05cb",
                 "d7b11799621bcfc7", "f79e608a965f0761", "b4b272ffb6336ac8",
                 "736833cea04da5d5", "d93d44936727978b", "13d61548db230131",
                 "f788ffb018153f07"]


def test_campaign_examples_are_valid_and_plan_the_same_tasks():
    laptop = load_campaign(CAMPAIGNS / "llzo_lco_laptop.yaml")
    assert [t.hash for t in laptop.tasks()] == LAPTOP_HASHES
    assert laptop.md["timestep"] == 1.0 and laptop.resources == {"nodes": 1,
                                                                 "workers_per_node": 2}
    production = load_campaign(CAMPAIGNS / "llzo_lco_production.yaml")
    assert len(production.tasks()) > len(LAPTOP_HASHES)


@pytest.mark.parametrize("old, new, message", [
    ("  - {structure: LCO, temperatures: [1000, 2000]", "  - {structure: LCO, "
     "temperatures: [1000, -2000]", "sampling.2.temperatures.1: must be > 0 K (got -2000)"),
    ("  threads: 1", "  thread: 1", "labeler.thread: labeler chgnet has no option 'thread'"),
    ("  interval: 10 ", "  interval: ten ", "md.interval: must be a whole number"),
    ("    composition: Li7La2CoZr2O12", "    composition: Li7La2CoZr2O12\n    site: Xx",
     "structures.1Co_La (1 f.u.).site: builder packing has no parameter 'site'"),
    ("  workers_per_node: 2 ", "  workers_per_node: 0 ",
     "resources.workers_per_node: must be >= 1 (got 0)"),
    ("site: local ", "site: nosuch ", "site: unknown site 'nosuch'"),
])
def test_campaign_broken_keys(tmp_path, old, new, message):
    text = edit((CAMPAIGNS / "llzo_lco_laptop.yaml").read_text(), old, new)
    path = tmp_path / "c.yaml"
    error = rejected(load_campaign, path, text, InputFileError)
    assert message in str(error)
    assert error.path == str(path)
    assert error.line == line_of(text, new.splitlines()[-1].strip())


def test_campaign_dopant_site_of_a_builder_is_checked_before_anything_is_built(tmp_path):
    text = ("structures:\n  doped: {builder: co_doped_amorphous, n: 2, site: Xx}\n"
            "sampling:\n  - {structure: doped, temperatures: [1000], snapshots: 1}\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputFileError, match=r"c\.yaml:2: structures\.doped\.site: 'Xx' is "
                                             r"not a dopant site of LLZO"):
        load_campaign(path)


def test_unknown_site_is_reported_before_any_folder_is_written(tmp_path, monkeypatch, capsys):
    """Issue #15: the work folder was created before the site was looked up."""
    monkeypatch.chdir(tmp_path)
    text = ("name: t\nworkdir: work\nsite: nosuch\nlabeler: {name: emt}\n"
            "structures:\n  Cu: {builder: bulk, name: Cu, cubic: true}\n"
            "sampling:\n  - {structure: Cu, temperatures: [300], snapshots: 1}\n")
    (tmp_path / "c.yaml").write_text(text)
    assert main(["sample", "c.yaml"]) == 2
    err = capsys.readouterr().err
    assert "c.yaml:3: site: unknown site 'nosuch'; known sites: aurora" in err
    assert not (tmp_path / "work").exists()
    (tmp_path / "c.yaml").write_text(text.replace("site: nosuch", "site: serial"))
    assert main(["sample", "c.yaml", "--site", "elsewhere"]) == 2
    assert "site elsewhere: unknown site 'elsewhere'" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


# ----------------------------------------------------------------------------- protocol

PROTOCOL = """\
structure: start.extxyz
potential: ../potential
timestep: 0.5
segment: 2 ps
trajectory: {fields: [velocity]}
zbl: {inner: 0.8, outer: 1.4}
stages:
  - {type: minimize, ftol: 1.0e-3, box: iso}
  - {type: heat, T0: 10, T1: 600, time: 20 ps}
  - {type: npt, T: 600, P: 1.0, barostat: aniso, time: 1 ns, pdamp: 1 ps}
  - {type: nve, time: 100 steps}
"""


#: stage signatures of PROTOCOL as computed by the parser of commit 5e66f06: an MD run
#: started before the typed layer resumes (hpcnnp md --resume checks them)
PROTOCOL_SIGNATURES = ["70185bff85262b1d", "b2c3d10117ddc7e0", "a142fb54f07252ae",
                       "a61c154f4b481691"]


def test_protocol_good_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(PROTOCOL)
    p = load_protocol(path)
    assert [s.signature() for s in p.stages] == PROTOCOL_SIGNATURES
    assert [s.type for s in p.stages] == ["minimize", "heat", "npt", "nve"]
    assert [s.n_steps for s in p.stages] == [0, 40000, 2000000, 100]
    assert p.stages[2].pdamp_ps == 1.0 and p.stages[1].velocity == 10
    assert p.segment_steps == 4000 and p.fields == ("position", "image", "velocity")
    assert p.zbl == {"inner": 0.8, "outer": 1.4} and p.output == tmp_path / "run"


@pytest.mark.parametrize("old, new, message", [
    ("T1: 600,", "T1: -600,", "stages.1.T1: must be > 0 K (got -600)"),
    ("timestep: 0.5", "timestep: 0", "timestep: must be > 0 fs (got 0)"),
    ("barostat: aniso", "barostat: cubic", "stages.2.barostat: must be one of 'iso', "
                                           "'aniso' or 'tri'"),
    ("{type: nve, time: 100 steps}", "{type: nve, time: 100 steps, T: 300}",
     "stages.3.T: unknown key"),
    ("{type: nve, time: 100 steps}", "{type: nvx, time: 100 steps}",
     "stages.3.type: unknown stage type 'nvx'"),
    ("segment: 2 ps", "segment: 0.1 fs", "segment: must be at least one time step"),
    ("zbl: {inner: 0.8, outer: 1.4}", "zbl: {inner: 0.8, outer: 0.4}",
     "zbl.outer: must be larger than inner"),
    ("trajectory: {fields: [velocity]}", "trajectory: {fields: [velocities]}",
     "trajectory.fields.0: must be one of 'position', 'image', 'velocity' or 'force'"),
])
def test_protocol_broken_keys(tmp_path, old, new, message):
    text = edit(PROTOCOL, old, new)
    with pytest.raises(InputFileError) as info:
        parse_protocol(text, tmp_path / "run.yaml")
    assert message in str(info.value)
    assert info.value.line == line_of(text, new)


# ----------------------------------------------------------------------------- active

ACTIVE = """\
data: input.data
settings: input.nn
committee: {size: 2, epochs: 3}
exploration:
  structures: [{builder: lco, repeat: [2, 2, 1]}, {data: 0}]
  temperatures: 900
selection: {sigma_low: 0.05, sigma_high: 0.5}
labeler: {name: emt, stress: false, batch: 4}
site: local
"""


@pytest.fixture
def active_dir(tmp_path):
    (tmp_path / "input.data").write_text("")
    (tmp_path / "input.nn").write_text("")
    return tmp_path


def test_active_good_file(active_dir):
    path = active_dir / "active.yaml"
    path.write_text(ACTIVE)
    cfg = load_config(path)
    assert cfg["input_nn"] == str(active_dir / "input.nn")
    assert cfg["exploration.temperatures"] == [900.0]
    assert cfg["exploration.structures"][1] == {"data": [0]}
    assert cfg["labeler.options"] == {"stress": False} and cfg["labeler.batch"] == 4
    assert cfg["parallel.site"] == "local" and cfg.committee.size == 2


@pytest.mark.parametrize("old, new, message", [
    ("temperatures: 900", "temperatures: -900",
     "exploration.temperatures: must be > 0 K (got -900)"),
    ("{builder: lco, repeat", "{builder: lco, options: {a: -1, c: 14}, repeat", None),
    ("{builder: lco, repeat", "{builder: lko, repeat",
     "exploration.structures.0.builder: unknown builder 'lko'"),
    ("{builder: lco, repeat", "{builder: lco, options: {colour: red}, repeat",
     "exploration.structures.0.options.colour: builder lco has no parameter 'colour'"),
    ("sigma_high: 0.5", "sigma_high: 0.01",
     "selection.sigma_high: must be larger than selection.sigma_low"),
    ("committee: {size: 2,", "committee: {size: 1,", "committee.size: must be >= 2 (got 1)"),
    ("site: local", "site: local\nparallel: {site: local}",
     "site: given twice (as site and as parallel.site)"),
    ("site: local", "parallel: {site: nosuch}", "parallel.site: unknown site 'nosuch'"),
])
def test_active_broken_keys(active_dir, old, new, message):
    text = edit(ACTIVE, old, new)
    path = active_dir / "active.yaml"
    path.write_text(text)
    if message is None:                      # a builder's own parameters are accepted
        assert load_config(path)["exploration.structures"][0]["options"] == {"a": -1, "c": 14}
        return
    error = rejected(load_config, path, text, InputFileError)
    assert message in str(error)
    assert error.line == line_of(text, new.splitlines()[0])


# ----------------------------------------------------------------------------- site

def test_every_shipped_site_is_valid():
    names = sorted(list_sites())
    assert {"aurora", "flux", "frontier", "lassen", "local", "summit"} <= set(names)
    for name in names:
        assert load_site(name).name == name


@pytest.mark.parametrize("old, new, message", [
    ("  gpus: 8", "  gpus: -1", "node.gpus: must be >= 0 (got -1)"),
    ("      - {max_nodes: 91, walltime: \"02:00:00\"}",
     "      - {max_nodes: 91, walltime: \"02:75:00\"}",
     "queue.limits.batch.0.walltime: walltime '02:75:00' is not HH:MM:SS"),
    ("  reserved_cores: [0, 8,", "  reserved_cores: [0, 80,",
     "node.reserved_cores.1: must be a core number 0..63"),
    ("    exclusive: true", "    exclusive: true\n    mem: \"%{memory}\"",
     "parsl.provider_options.mem: unknown placeholder %{memory}"),
    ("  launcher: SrunLauncher", "  launcher: SrunLauncer",
     "parsl.launcher: unknown Parsl launcher"),
])
def test_site_broken_keys(tmp_path, old, new, message):
    text = edit((SITES / "frontier.yaml").read_text(), old, new)
    error = rejected(load_site, tmp_path / "frontier.yaml", text, SiteError)
    assert message in str(error)
    assert error.line == line_of(text, new.splitlines()[-1].strip())


def test_site_copied_under_another_name_names_the_key(tmp_path):
    path = tmp_path / "mine.yaml"
    shutil.copy(SITES / "local.yaml", path)
    with pytest.raises(SiteError, match=r"mine\.yaml:\d+: name: 'local' differs from the "
                                        r"file name 'mine.yaml'"):
        load_site(path)
