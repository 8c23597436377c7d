"""Shared helpers of the configuration-layer tests (imported by the test modules)."""

from pathlib import Path

from _helpers import rejected  # noqa: F401 (the config tests' helper)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = REPO / "examples" / "llzo_lco" / "project.yaml"
#: a frozen copy of an earlier example project: the line edits of the tests stay valid
#: while the demo's settings change
FROZEN_PROJECT = Path(__file__).resolve().parent / "data" / "project.yaml"
CAMPAIGNS = REPO / "examples" / "campaigns"
SITES = REPO / "jobs" / "sites"


def edit(text, old, new):
    """*text* with *old* replaced once by *new* (the edit must apply)."""
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text, fragment):
    """1-based line of the first line of *text* containing *fragment*."""
    for number, line in enumerate(text.splitlines(), 1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in the text")

