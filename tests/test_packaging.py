"""Habits of the house: one version, extras, the README's commands, licence, changelog."""

import re
from pathlib import Path

import pytest

import hpcnnp

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_is_written_once(pyproject):
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?(a|b|rc|dev|post)\d+)?", hpcnnp.__version__)
    hits = [str(p.relative_to(ROOT)) for p in ROOT.glob("**/*.py")
            if ".venv" not in p.parts and "build" not in p.parts
            and re.search(r'^\s*(__version__|version)\s*=\s*["\']\d', p.read_text(),
                          re.MULTILINE)]
    assert hits == ["hpcnnp/__init__.py"]
    from importlib.metadata import PackageNotFoundError, version
    try:
        assert version("hpcnnp") == hpcnnp.__version__      # setup.py read it from there
    except PackageNotFoundError:                            # pragma: no cover
        pytest.skip("hpcnnp is not installed (metadata not available)")


def test_mpich_has_its_own_extra(pyproject):
    extras = pyproject["project"]["optional-dependencies"]
    assert extras["mpich"] == ["mpich"]
    for name, deps in extras.items():
        if name != "mpich":
            assert not any(d.split(">")[0].split("=")[0] == "mpich" for d in deps), name


def test_readme_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmds = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    assert len(cmds) == 2
    run_cmd, test_cmd = cmds
    assert test_cmd in ci                        # CI runs the README's test command
    assert "mpich" in run_cmd and "mpich" in test_cmd
    assert re.search(r"^ruff check\b", ci, re.MULTILINE)


def test_license_changelog_precommit(pyproject):
    text = (ROOT / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 30000     # the full text
    assert pyproject["project"]["license"]["text"] == "GPL-3.0-or-later"
    log = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in log and "keepachangelog.com" in log
    assert re.search(rf"^## \[{re.escape(hpcnnp.__version__)}\]", log, re.MULTILINE)
    hooks = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "ruff check" in hooks
    lint = pyproject["tool"]["ruff"]["lint"]
    assert "C90" in lint["select"] and lint["mccabe"]["max-complexity"] <= 20
