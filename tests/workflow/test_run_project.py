"""The main job's project file and stage driver (hpcnnp run).

The full pipeline is exercised by examples/llzo_lco/project.yaml (README's first
command); here: a malformed project stops before any work with a message naming
the key, and a killed run resumes from the last finished stage.
"""
import shutil
from pathlib import Path

import pytest
import yaml

from hpcnnp.cli import main
from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.structures.substitution import substitute
from hpcnnp.workflow import runner
from hpcnnp.workflow import stages as stages_mod
from hpcnnp.workflow.project import load_project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llzo_lco" / "project.yaml"


def _write(tmp_path, data):
    path = tmp_path / "project.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _example():
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_project_is_valid():
    p = load_project(EXAMPLE)
    assert p["labeler"]["name"] == "chgnet"
    assert p["site"] == "local"


@pytest.mark.parametrize("edit,key", [
    (lambda d: d.pop("labeler"), "labeler"),
    (lambda d: d.pop("campaign"), "campaign"),
    (lambda d: d.__setitem__("labeler", {"name": "dft-of-my-dreams"}), "labeler.name"),
    (lambda d: d.__setitem__("site", "no-such-machine"), "site"),
    (lambda d: d.__setitem__("scale", -1), "scale"),
    (lambda d: d.__setitem__("network", {"hidden": [10, 10], "activation": "t l"}),
     "network.activation"),
    (lambda d: d.__setitem__("descriptors", {"preset": "nope"}), "descriptors.preset"),
    (lambda d: d.__setitem__("colour", "blue"), "colour"),
])
def test_malformed_project_names_the_key(tmp_path, capsys, edit, key):
    data = _example()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputFileError, match=key.replace(".", r"\.")):
        load_project(path)
    # the command stops with one line, before creating the work folder
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0]
    assert not (tmp_path / "run_llzo_lco").exists()


def test_killed_run_resumes_from_last_finished_stage(tmp_path, monkeypatch):
    """Stages write markers; after a crash in stage 3 a re-run skips 1-2."""
    calls = []

    def make(name, fail=False):
        def fn(ctx):
            calls.append(name)
            if fail and not (ctx.path("retry")).exists():
                ctx.path("retry").write_text("x")
                raise RuntimeError(f"{name} killed")
            (ctx.path(f"{name}.out")).write_text(name)
            return {"out": name}
        fn.__doc__ = f"fake stage {name}"
        return fn

    fake = [("a", make("a")), ("b", make("b")), ("c", make("c", fail=True)), ("d", make("d"))]
    monkeypatch.setattr(runner, "STAGES", fake)
    path = _write(tmp_path, _example())
    project = load_project(path)
    with pytest.raises(RuntimeError, match="c killed"):
        runner.run_project(project, ranks=1, log=lambda m: None)
    assert calls == ["a", "b", "c"]
    assert sorted(p.name for p in (project.workdir / ".done").iterdir()) == ["a.json", "b.json"]
    runner.run_project(project, ranks=1, log=lambda m: None)
    assert calls == ["a", "b", "c", "c", "d"]          # a, b skipped on the re-run
    assert (project.workdir / "d.out").exists()
    shutil.rmtree(project.workdir)


def test_failed_production_stage_is_reported_not_fatal(tmp_path, monkeypatch):
    """A failing MD stage (e.g. a poorly trained potential loses atoms) is recorded,
    the remaining stages and the report still run, and the command fails at the end."""
    from hpcnnp.workflow.report import write_report
    from hpcnnp.workflow.context import StageError

    def ok(ctx):
        return {}
    ok.__doc__ = "fine"

    def md(ctx):
        raise StageError("LAMMPS: Lost atoms")
    md.__doc__ = "md"

    def report(ctx):
        return {"report": str(write_report(ctx, ["train", "md_interface", "report"]))}
    report.__doc__ = "report"

    monkeypatch.setattr(runner, "STAGES", [("train", ok), ("md_interface", md),
                                               ("report", report)])
    project = load_project(_write(tmp_path, _example()))
    with pytest.raises(StageError, match="md_interface"):
        runner.run_project(project, ranks=1, log=lambda m: None)
    text = (project.workdir / "report.md").read_text()
    assert "**failed**: LAMMPS: Lost atoms" in text
    assert (project.workdir / ".done" / "train.json").exists()
    # the retry succeeds: the report (done earlier) is rewritten, train is skipped
    calls = []

    def md_ok(ctx):
        calls.append("md")
        return {}
    md_ok.__doc__ = "md"
    monkeypatch.setattr(runner, "STAGES", [("train", ok), ("md_interface", md_ok),
                                               ("report", report)])
    runner.run_project(project, ranks=1, log=lambda m: None)
    assert calls == ["md"]
    assert "Lost atoms" not in (project.workdir / "report.md").read_text()


def test_gb_of_the_example_is_co_doped_isovalently_with_its_planes():
    """The demo GB carries Co (Co3+ on La3+, random) so that the analysis stage has a
    segregation profile to measure; the builder's plane metadata survive."""
    spec = load_project(EXAMPLE).config.production.gb
    atoms = stages_mod.build_gb(spec, seed=3)
    sym = atoms.get_chemical_symbols()
    n_co = spec.dopant.count
    assert sym.count("Co") == n_co
    # isovalent: La + Co = 3/2 Zr (LLZO La3Zr2), Li and O untouched
    assert 2 * (sym.count("La") + sym.count("Co")) == 3 * sym.count("Zr")
    assert atoms.info["planes"] and "Co on La" in atoms.info["substitution"]
    again = stages_mod.build_gb(spec, seed=3)
    assert again.get_chemical_symbols() == sym                 # seeded
    with pytest.raises(HpcnnpError, match="count"):
        substitute(atoms.copy(), site="La", count=10**6)


def test_in_process_stage_shows_the_progress_of_its_workers(tmp_path):
    """Committee members train in Parsl workers: their progress events reach the
    driver's lines through ``Context.follow`` (issue #17.3); the driver's own events
    are not printed twice."""
    import subprocess
    import sys

    from hpcnnp.progress import Progress
    from hpcnnp.workflow.context import Context

    project = load_project(_write(tmp_path, _example()))
    lines = []
    ctx = Context(project, ranks=1, log=lines.append)
    code = ("from hpcnnp.progress import Progress\n"
            "p = Progress('hpcnnp train', total=4, unit='epochs', interval=0)\n"
            "for k in range(1, 5):\n    p.update(k)\np.close()\n")
    with ctx.follow("active") as events:
        Progress("active: committee", total=1, unit="members", interval=0).update(1)
        subprocess.run([sys.executable, "-c", code], check=True,
                       capture_output=True)
    assert events.exists()
    worker = [ln for ln in lines if "hpcnnp train" in ln]
    assert any("4/4" in ln for ln in worker), lines
    assert not any("active: committee" in ln for ln in lines)
