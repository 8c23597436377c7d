"""File names never become commands: a line break in a name that reaches a batch
script or LAMMPS is refused, and a multi-line value in a comment stays a comment."""

import subprocess

import pytest
from _reliability import hpcnnp, one_clear_line


def _protocol(tmp_path, name):
    path = tmp_path / name
    path.write_text("structure: cell.extxyz\npotential: pot\nstages:\n"
                    "  - {type: nvt, T: 300, time: 1 ps}\n")
    return path


def test_newline_in_protocol_name_is_refused(tmp_path):
    """Case: a newline in the protocol file name was copied raw into a comment of the
    rendered batch scripts, so the next line ran as a command in submit_chain.sh."""
    evil = _protocol(tmp_path, "p\ntouch INJECTED\n.yaml")
    out = tmp_path / "jobs"
    proc = hpcnnp("jobs", "render", "--site", "local", "--nodes", "1", "--protocol", evil,
                  "--total-ns", "0.001", "--segment-ns", "0.0005", "--output-dir", out,
                  cwd=tmp_path)
    one_clear_line(proc, "protocol file", "line break", "rename it")
    assert not out.exists()
    # had it been written: nothing of the name may run as a command
    for script in out.glob("*.sh") if out.exists() else []:
        subprocess.run(["bash", "-n", str(script)], check=True)
    assert not (tmp_path / "INJECTED").exists()


@pytest.mark.parametrize("option", ["--workdir", "--output-dir"])
def test_newline_in_folder_names_is_refused(tmp_path, option):
    good = _protocol(tmp_path, "p.yaml")
    args = {"--workdir": tmp_path / "w", "--output-dir": tmp_path / "jobs"}
    args[option] = tmp_path / "a\nrm -rf ~\n"
    proc = hpcnnp("jobs", "render", "--site", "local", "--nodes", "1", "--protocol", good,
                  "--total-ns", "0.001", "--segment-ns", "0.0005",
                  *[str(x) for kv in args.items() for x in kv], cwd=tmp_path)
    one_clear_line(proc, "line break")


def test_multiline_value_in_a_comment_stays_a_comment():
    from hpcnnp.hpc.templates import render_text

    text = render_text("#!/bin/bash\n# %{title}\necho ok\n",
                       {"title": "MD p\ntouch INJECTED\n.yaml"})
    assert text == "#!/bin/bash\n# MD p\n# touch INJECTED\n# .yaml\necho ok\n"


def test_lammps_paths_are_quoted_or_refused():
    from hpcnnp.md.driver import MDError, _q

    assert _q("/a/b.data") == "/a/b.data"
    assert _q("/a b/c.data") == '"/a b/c.data"'
    assert _q("/run#1/traj") == '"/run#1/traj"'
    assert _q('/x"y/z') == '"""/x"y/z"""'
    with pytest.raises(MDError, match="line break"):
        _q("/a\nshell rm -rf ~\n")
