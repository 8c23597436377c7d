"""The API reference (docs/) builds from the docstrings with warnings as errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_builds_without_warnings(tmp_path):
    for module in ("sphinx", "numpydoc", "myst_parser"):
        pytest.importorskip(module, reason="the docs build needs the 'docs' extra")
    src = tmp_path / "docs"              # autosummary writes its pages into the source
    shutil.copytree(ROOT / "docs", src, ignore=shutil.ignore_patterns("_build", "generated"))
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                           "-b", "html", "-d", str(tmp_path / "doctrees"), str(src),
                           str(tmp_path / "html")], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    html = tmp_path / "html"
    # one page per module, generated from its docstrings (numpydoc sections rendered)
    page = (html / "generated" / "hpcnnp.progress.html").read_text()
    assert "Progress" in page and "HPCNNP_EVENTS" in page and "Parameters" in page
    assert (html / "generated" / "hpcnnp.analysis.structure.html").is_file()
    assert (html / "generated" / "hpcnnp.units.html").is_file()
    assert "A command" in (html / "extending.html").read_text()
