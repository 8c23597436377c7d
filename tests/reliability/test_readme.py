"""The README says what is guaranteed and which YAML keys run code (issue #15: "YAML
files can name Python factories: they are code, and the README should say so")."""

from _reliability import REPO


def test_readme_reliability_section():
    text = (REPO / "README.md").read_text()
    assert "## Reliability" in text
    section = text.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    for topic in ("Atomic outputs", "lock", "Resume", "SIGTERM", "SIGKILL", "MPI",
                  "What a YAML file may execute", "`python` labeler", "module:function",
                  "`command` and `launcher`"):
        assert topic in section, topic
