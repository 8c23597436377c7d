"""Tests of hpcnnp.descriptors.sfgen and the ``hpcnnp sfgen`` command.

Reference: n2p2-formats.md §14 and ../shared/refdata/sfparamgen/ (outputs of
n2p2's sfparamgen for the LLZO/LCO seed example).
"""

import argparse
import re

import numpy as np
import pytest

from hpcnnp.descriptors import sfgen
from hpcnnp.descriptors.sfgen import (
    LLZO_LCO_DEFAULT, LLZO_LCO_WIDE, SymFuncConfig, SymFuncParamError,
    SymFuncParamWarning, SymFuncSet, generate, radial_parameters)
from hpcnnp.errors import HpcnnpError

ELEMENTS = ("Li", "La", "Zr", "O", "Co")
RC = 6.0

# The four overview blocks of run_example.stdout, in file order.
RUN_EXAMPLE_SETS = [
    SymFuncSet("radial", "imbalzano2018", "shift", 9, RC),
    SymFuncSet("angular_narrow", "gastegger2018", "center", 3, RC, 1.5, 6.0, (1, 6)),
    SymFuncSet("radial", "imbalzano2018", "center", 9, RC),
    SymFuncSet("radial", "gastegger2018", "shift", 3, RC, 1.5, 6.0),
]

# §5.1: number of tokens after "symfunction_short" per n2p2 type (3/9 with r_s)
TOKENS_AFTER_KEYWORD = {2: 6, 3: 9, 9: 9, 12: 5, 13: 7}
# tokens (0-based, after the keyword) that are element symbols
ELEMENT_TOKENS = {2: (0, 2), 3: (0, 2, 3), 9: (0, 2, 3), 12: (0,), 13: (0,)}


def _read(refdata, name):
    return (refdata / "sfparamgen" / name).read_text()


def _overview_blocks(text):
    """Runs of consecutive '#' lines (each run ending in a newline)."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            current.append(line)
        elif current:
            blocks.append("\n".join(current) + "\n")
            current = []
    if current:
        blocks.append("\n".join(current) + "\n")
    return blocks


def _samples(text):
    """{kind: (count, [sample lines])} from the 'KIND lines: N' sections."""
    out, kind = {}, None
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+) lines: (\d+)", line)
        if m:
            kind = m.group(1)
            out[kind] = (int(m.group(2)), [])
        elif line.startswith("symfunction_short") and kind:
            out[kind][1].append(line)
        else:
            kind = None
    return out


def _check_sf_line(line):
    """Token-count check of one symfunction_short line per §5.1."""
    tokens = line.split()
    assert tokens[0] == "symfunction_short"
    sf_type = int(tokens[2])
    rest = tokens[1:]
    assert len(rest) == TOKENS_AFTER_KEYWORD[sf_type], line
    for i, tok in enumerate(rest):
        if i in ELEMENT_TOKENS[sf_type]:
            assert re.fullmatch(r"[A-Z][a-z]?", tok), line
        elif i != 1:
            float(tok)  # every other token is a number (atof-compatible)
    return sf_type


# ---------------------------------------------------------------------------
# grids
# ---------------------------------------------------------------------------

def test_imbalzano_shift_llzo_grid():
    r_s, eta = radial_parameters("imbalzano2018", "shift", 9, RC)
    assert np.round(r_s, 4).tolist() == [0.6667, 0.851, 1.0863, 1.3867, 1.7702,
                                         2.2597, 2.8845, 3.6821, 4.7003]
    assert np.round(eta, 4).tolist() == [29.4263, 18.0585, 11.0822, 6.801, 4.1737,
                                         2.5613, 1.5719, 0.9646, 0.592]
    # first pair from the closed form of §14: r_s = r_c/N, η = 1/(r_c/N^(8/9) − r_c/N)²
    assert r_s[0] == pytest.approx(6.0 / 9)
    assert eta[0] == pytest.approx(1.0 / (6.0 / 9 ** (8 / 9) - 6.0 / 9) ** 2)


def test_gastegger_center_llzo_grid():
    r_s, eta = radial_parameters("gastegger2018", "center", 3, RC, 1.5, 6.0)
    assert np.all(r_s == 0.0)
    assert np.round(eta, 4).tolist() == [0.2222, 0.0356, 0.0139]
    assert eta == pytest.approx(1.0 / (2.0 * np.array([1.5, 3.75, 6.0]) ** 2))


def test_imbalzano_center_grid():
    r_s, eta = radial_parameters("imbalzano2018", "center", 9, RC)
    assert np.all(r_s == 0.0)
    assert eta[0] == pytest.approx(1 / 36) and eta[-1] == pytest.approx((8 / 6) ** 2)
    assert np.all(np.diff(eta) > 0)


def test_gastegger_shift_grid_and_defaults():
    r_s, eta = radial_parameters("gastegger2018", "shift", 3, RC, 1.5)  # r_upper = r_c
    assert r_s.tolist() == [1.5, 3.75, 6.0]
    assert eta == pytest.approx(np.full(3, 1 / (2 * 2.25**2)))
    r_s, _ = radial_parameters("gastegger2018", "shift", 4, RC, 0.0, 3.0)  # 0 allowed
    assert r_s.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_imbalzano_center_n2_duplicates_eta():
    # Documented caveat of the rule (§14): (N−1)^(2i/(N−1)) = 1 for N = 2, so
    # both η are 1/r_c² and the two SFs of every block are identical.
    with pytest.warns(SymFuncParamWarning, match="identical"):
        r_s, eta = radial_parameters("imbalzano2018", "center", 2, RC)
    assert eta.tolist() == [1 / 36, 1 / 36]
    with pytest.warns(SymFuncParamWarning):
        s = SymFuncSet("radial", "imbalzano2018", "center", 2, RC)
    block = s.lines(["Li"])
    assert block[0] == block[1] and block[2] == ""


def test_imbalzano_ignores_bounds_with_warning():
    with pytest.warns(SymFuncParamWarning, match="ignores r_lower/r_upper"):
        r_s, eta = radial_parameters("imbalzano2018", "shift", 9, RC, 1.0, 5.0)
    ref = radial_parameters("imbalzano2018", "shift", 9, RC)
    assert np.array_equal(r_s, ref[0]) and np.array_equal(eta, ref[1])
    with pytest.warns(SymFuncParamWarning):
        s = SymFuncSet("radial", "imbalzano2018", "shift", 9, RC, 1.0, 5.0)
    assert s.r_lower is None and s.r_upper is None
    assert s.overview(ELEMENTS) == RUN_EXAMPLE_SETS[0].overview(ELEMENTS)


@pytest.mark.parametrize("args, match", [
    (("foo2020", "shift", 9, RC), "unknown rule"),
    (("imbalzano2018", "middle", 9, RC), "unknown mode"),
    (("imbalzano2018", "shift", 1, RC), ">= 2"),
    (("imbalzano2018", "shift", 0, RC), ">= 2"),
    (("imbalzano2018", "shift", 2.5, RC), "integer"),
    (("imbalzano2018", "shift", True, RC), "integer"),
    (("imbalzano2018", "shift", 9, 0.0), "r_cutoff"),
    (("imbalzano2018", "shift", 9, -6.0), "r_cutoff"),
    (("imbalzano2018", "shift", 9, float("nan")), "r_cutoff"),
    (("gastegger2018", "center", 3, RC), "needs r_lower"),
    (("gastegger2018", "center", 3, RC, 0.0, 6.0), "> 0"),
    (("gastegger2018", "shift", 3, RC, -0.5, 6.0), ">= 0"),
    (("gastegger2018", "center", 3, RC, 3.0, 3.0), "smaller than r_upper"),
    (("gastegger2018", "shift", 3, RC, 4.0, 2.0), "smaller than r_upper"),
    (("gastegger2018", "center", 3, RC, 1.5, 6.5), "exceed the cutoff"),
    (("gastegger2018", "center", 3, RC, 7.0), "smaller than r_upper"),
])
def test_radial_parameters_rejects_bad_input(args, match):
    with pytest.raises(SymFuncParamError, match=match) as info:
        radial_parameters(*args)
    assert isinstance(info.value, HpcnnpError)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="angular"), "unknown symmetry-function kind"),
    (dict(kind="angular_narrow", zetas=()), "at least one zeta"),
    (dict(kind="angular_narrow", zetas=(1, -2)), "zeta must be"),
    (dict(kind="angular_narrow", zetas=(1, 1)), "duplicates"),
])
def test_symfuncset_rejects_bad_input(kwargs, match):
    base = dict(rule="imbalzano2018", mode="shift", n_pairs=3, r_cutoff=RC)
    with pytest.raises(SymFuncParamError, match=match):
        SymFuncSet(**{**base, **kwargs})


@pytest.mark.parametrize("elements, match", [
    ((), "no elements"),
    (("Li", "O", "Li"), "given twice"),
    (("Li", "oxygen"), "not an element symbol"),
    ("LiO", "not the string"),
])
def test_bad_elements(elements, match):
    with pytest.raises(SymFuncParamError, match=match):
        RUN_EXAMPLE_SETS[0].lines(elements)


def test_radial_set_has_no_zetas():
    s = SymFuncSet("radial", "imbalzano2018", "shift", 9, RC, zetas=(1, 6))
    assert s.zetas == () and s.lambdas == ()
    assert s.n_per_element(ELEMENTS) == 45


# ---------------------------------------------------------------------------
# lines and overview against n2p2's sfparamgen
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("index, name", [
    (0, "out_radial_imbalzano_shift9.txt"),
    (1, "out_angnarrow_gastegger_center3.txt"),
])
def test_lines_byte_identical_to_sfparamgen(refdata, index, name):
    lines = LLZO_LCO_DEFAULT.sets[index].lines(ELEMENTS)
    assert "\n".join(lines) + "\n" == _read(refdata, name)


def test_overview_blocks_identical_to_run_example(refdata):
    blocks = _overview_blocks(_read(refdata, "run_example.stdout"))
    assert len(blocks) == len(RUN_EXAMPLE_SETS)
    for block, s in zip(blocks, RUN_EXAMPLE_SETS):
        assert s.overview(ELEMENTS) == block


def test_overview_grid_lines_llzo():
    text = LLZO_LCO_DEFAULT.sets[0].overview(ELEMENTS)
    assert text.splitlines()[0] == "#" * 73
    assert ("# r_shift_grid   = [0.6667 0.851  1.0863 1.3867 1.7702 2.2597 2.8845 "
            "3.6821 4.7003]") in text.splitlines()


def test_overview_ignores_global_numpy_printoptions():
    s = RUN_EXAMPLE_SETS[0]
    expected = s.overview(ELEMENTS)
    with np.printoptions(precision=8, linewidth=20, legacy="1.13"):
        assert s.overview(ELEMENTS) == expected


def test_line_samples_and_counts_of_run_example(refdata):
    samples = _samples(_read(refdata, "run_example.stdout"))
    assert set(samples) == {"radial", "angular_narrow", "angular_wide"}
    wide = SymFuncSet("angular_wide", "gastegger2018", "center", 3, RC, 1.5, 6.0, (1, 6))
    ours = {"radial": RUN_EXAMPLE_SETS[0], "angular_narrow": RUN_EXAMPLE_SETS[1],
            "angular_wide": wide}
    for kind, (count, lines) in samples.items():
        generated = [line for line in ours[kind].lines(ELEMENTS) if line]
        assert len(generated) == count
        assert generated[:len(lines)] == lines


# ---------------------------------------------------------------------------
# structure of the generated lines
# ---------------------------------------------------------------------------

def test_llzo_counts():
    assert LLZO_LCO_DEFAULT.elements == ELEMENTS
    assert LLZO_LCO_DEFAULT.n_per_element() == 225
    assert LLZO_LCO_DEFAULT.counts() == {"radial": 45, "angular_narrow": 180}
    assert len(LLZO_LCO_DEFAULT.lines()) == 1125
    assert LLZO_LCO_WIDE.n_per_element() == 405
    assert len(LLZO_LCO_WIDE.lines()) == 405 * 5
    assert [s.sf_type for s in LLZO_LCO_WIDE.sets] == [2, 3, 9]
    for el in ELEMENTS:
        per_el = [line for line in LLZO_LCO_WIDE.lines() if line.split()[1] == el]
        assert len(per_el) == 405


ALL_KINDS = [
    SymFuncSet("radial", "gastegger2018", "shift", 4, 5.0, 1.0, 4.0),
    SymFuncSet("angular_narrow", "imbalzano2018", "center", 3, 5.0, zetas=(1, 2, 4)),
    SymFuncSet("angular_wide", "gastegger2018", "center", 2, 5.0, 1.0, zetas=(1.5,)),
    SymFuncSet("weighted_radial", "imbalzano2018", "shift", 5, 5.0),
    SymFuncSet("weighted_angular", "gastegger2018", "shift", 3, 5.0, 0.0, 5.0, (1, 6)),
]


@pytest.mark.parametrize("s", ALL_KINDS, ids=lambda s: s.kind)
def test_lines_token_counts_blocks_and_count(s):
    # hpcnnp.io.n2p2.parse_symfunction did not exist when this was written:
    # the lines are checked against the token layout of §5.1 instead.
    elements = ["Li", "O", "Co"]
    lines = s.lines(elements)
    sf_lines = [line for line in lines if line]
    assert {_check_sf_line(line) for line in sf_lines} == {s.sf_type}
    assert len(sf_lines) == s.n_per_element(elements) * len(elements)
    n_blocks = {"radial": 9, "angular_narrow": 18, "angular_wide": 18}.get(s.kind, 3)
    assert lines.count("") == n_blocks and lines[-1] == ""
    assert "" not in lines[:len(lines) // n_blocks - 1]
    if s.kind == "weighted_angular":
        assert all(line.endswith("6.000E+00 ") or line.endswith("5.000E+00 ")
                   for line in sf_lines)
    else:
        assert all(line == line.rstrip() for line in sf_lines)


def test_angular_element_order_and_loop_order():
    s = RUN_EXAMPLE_SETS[1]
    lines = [line for line in s.lines(["Li", "O", "Co"]) if line]
    pairs = list(dict.fromkeys(tuple(line.split()[1:2] + line.split()[3:5])
                               for line in lines))
    assert pairs == [("Li", "Li", "Li"), ("Li", "Li", "O"), ("Li", "Li", "Co"),
                     ("Li", "O", "O"), ("Li", "O", "Co"), ("Li", "Co", "Co"),
                     ("O", "Li", "Li"), ("O", "Li", "O"), ("O", "Li", "Co"),
                     ("O", "O", "O"), ("O", "O", "Co"), ("O", "Co", "Co"),
                     ("Co", "Li", "Li"), ("Co", "Li", "O"), ("Co", "Li", "Co"),
                     ("Co", "O", "O"), ("Co", "O", "Co"), ("Co", "Co", "Co")]
    # (η, r_s) outermost, then ζ, then λ (−1 before +1)
    first = [tuple(line.split()[5:8]) for line in lines[:12]]
    assert first[:4] == [("2.222E-01", "-1", "1.000E+00"), ("2.222E-01", "1", "1.000E+00"),
                         ("2.222E-01", "-1", "6.000E+00"), ("2.222E-01", "1", "6.000E+00")]
    assert [f[0] for f in first] == ["2.222E-01"] * 4 + ["3.556E-02"] * 4 + ["1.389E-02"] * 4


def test_generate_text():
    text = generate(ELEMENTS, LLZO_LCO_DEFAULT.sets)
    assert text == LLZO_LCO_DEFAULT.generate()
    lines = text.splitlines()
    assert all(not line or line.startswith("#") or line.startswith("symfunction_short ")
               for line in lines)
    assert [line for line in lines if line.startswith("symfunction")] == LLZO_LCO_DEFAULT.lines()
    assert len(_overview_blocks(text)) == 2
    assert text.startswith(LLZO_LCO_DEFAULT.sets[0].overview(ELEMENTS) + "\n")
    with pytest.raises(SymFuncParamError, match="no symmetry-function set"):
        generate(ELEMENTS, [])


def test_presets_table():
    assert sfgen.PRESETS == {"llzo-lco": LLZO_LCO_DEFAULT, "llzo-lco-wide": LLZO_LCO_WIDE}
    narrow, wide = LLZO_LCO_WIDE.sets[1:]
    assert (narrow.eta.tolist(), narrow.zetas) == (wide.eta.tolist(), wide.zetas)
    assert isinstance(LLZO_LCO_DEFAULT, SymFuncConfig)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

@pytest.fixture
def cli_main(monkeypatch):
    """hpcnnp.cli.main with only the sfgen sub-command registered.

    (The other stages live in modules written separately; the sfgen tests
    must not depend on them.)
    """
    import hpcnnp.cli

    monkeypatch.setattr(hpcnnp.cli, "COMMANDS", {"sfgen": "hpcnnp.commands.sfgen"})
    return hpcnnp.cli.main


LLZO_ARGS = ["--elements", *ELEMENTS, "--cutoff", "6.0",
             "--radial", "imbalzano2018:shift:9",
             "--angular-narrow", "gastegger2018:center:3:1.5:6.0", "--zetas", "1", "6"]


def test_cli_preset_writes_file(cli_main, tmp_path, capsys):
    out = tmp_path / "sf.nn"
    assert cli_main(["sfgen", "--preset", "llzo-lco", "-o", str(out)]) == 0
    assert out.read_text() == LLZO_LCO_DEFAULT.generate()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and "225 symmetry functions per element" \
        in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sf.nn"]  # no temp left


def test_cli_explicit_sets_equal_preset(cli_main, tmp_path, capsys):
    assert cli_main(["sfgen", *LLZO_ARGS, "-o", str(tmp_path / "a.nn")]) == 0
    assert (tmp_path / "a.nn").read_text() == LLZO_LCO_DEFAULT.generate()
    assert cli_main(["sfgen", *LLZO_ARGS, "--angular-wide",
                     "gastegger2018:center:3:1.5:6.0"]) == 0
    captured = capsys.readouterr()
    assert captured.out == LLZO_LCO_WIDE.generate()  # default: stdout
    assert "405 symmetry functions per element" in captured.err.splitlines()[-1]


@pytest.mark.parametrize("argv, match", [
    (["--elements", "Li", "O", "--cutoff", "6", "--radial", "foo:shift:3"], "unknown rule"),
    (["--elements", "Li", "O", "--cutoff", "6", "--radial", "imbalzano2018:shift:1"], ">= 2"),
    (["--elements", "Li", "O", "--cutoff", "6", "--radial",
      "gastegger2018:center:3:4.0:2.0"], "smaller than r_upper"),
    (["--elements", "Li", "O", "--cutoff", "6", "--radial", "imbalzano2018:shift"],
     "expected RULE:MODE:N"),
    (["--elements", "Li", "O", "--cutoff", "six", "--radial", "imbalzano2018:shift:3"],
     "must be a number"),
    (["--elements", "Li", "O", "--cutoff", "6"], "no symmetry-function set"),
    (["--preset", "llzo-lco", "--cutoff", "5"], "cannot be combined"),
    (["--preset", "llzo-lco", "--replace"], "only applies together with --append-to"),
])
def test_cli_errors_exit_2_with_one_line(cli_main, tmp_path, capsys, argv, match):
    out = tmp_path / "sf.nn"
    assert cli_main(["sfgen", *argv, "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith("hpcnnp sfgen: error: ")
    assert match in err[0]
    assert not out.exists()


def test_cli_warning_is_one_line(cli_main, capsys):
    assert cli_main(["sfgen", "--elements", "Li", "--cutoff", "6",
                     "--radial", "imbalzano2018:center:2"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("hpcnnp sfgen: warning: imbalzano2018 center with N=2")
    assert len(err) == 2


def test_cli_append_to(cli_main, tmp_path, capsys):
    nn = tmp_path / "input.nn"
    head = "number_of_elements 5\nelements Li La Zr O Co\ncutoff_type 6\n"
    nn.write_text(head)
    nn.chmod(0o640)
    assert cli_main(["sfgen", "--preset", "llzo-lco", "--append-to", str(nn)]) == 0
    text = nn.read_text()
    assert text.startswith(head + "\n# Symmetry functions generated by hpcnnp sfgen")
    assert text.endswith("\n" + LLZO_LCO_DEFAULT.generate())
    assert nn.stat().st_mode & 0o777 == 0o640
    capsys.readouterr()

    # refused a second time; file untouched
    assert cli_main(["sfgen", "--preset", "llzo-lco-wide", "--append-to", str(nn)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "already has 1125 symfunction_short lines" in err[0]
    assert "--replace" in err[0]
    assert nn.read_text() == text

    # --replace: the old block goes, the new one is appended once
    nn.write_text(text + "symfunction_short Li 2 Li 1.0 0.0 6.0\nrandom_seed 1\n")
    assert cli_main(["sfgen", "--preset", "llzo-lco-wide", "--append-to", str(nn),
                     "--replace"]) == 0
    new = nn.read_text()
    assert new.startswith(head + "random_seed 1\n\n# Symmetry functions generated")
    assert new.count("# Symmetry functions generated by hpcnnp sfgen") == 1
    assert new.endswith("\n" + LLZO_LCO_WIDE.generate())
    assert sum(line.startswith("symfunction_short") for line in new.splitlines()) == 2025
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.nn"]


def test_cli_append_to_missing_file(cli_main, tmp_path, capsys):
    assert cli_main(["sfgen", "--preset", "llzo-lco",
                     "--append-to", str(tmp_path / "nope.nn")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "cannot read" in err[0]


def test_cli_every_option_has_help():
    from hpcnnp.commands import sfgen as cmd

    parser = argparse.ArgumentParser(prog="hpcnnp")
    sub = parser.add_subparsers()
    p = cmd.register(sub)
    for action in p._actions:
        assert action.help and len(action.help) > 10, action.option_strings
    helps = {a.dest: a.help for a in p._actions}
    assert "Angstrom" in helps["cutoff"]
    assert all("Angstrom" in helps[k] for k in sfgen.KINDS)
    assert p.get_default("func") is cmd.run


def test_generated_lines_are_read_by_the_n2p2_reader(tmp_path):
    """Every line sfgen writes is accepted by hpcnnp's n2p2 input.nn reader with
    exactly the published counts (225 per element, 405 with the wide set)."""
    from hpcnnp.io.n2p2 import read_settings

    for preset, per_element in ((sfgen.LLZO_LCO_DEFAULT, 225), (sfgen.LLZO_LCO_WIDE, 405)):
        text = preset.generate()
        header = ("number_of_elements 5\nelements Li La Zr O Co\ncutoff_type 6 0.0\n"
                  "global_hidden_layers_short 2\nglobal_nodes_short 20 20\n"
                  "global_activation_short t t l\n")
        path = tmp_path / "input.nn"
        path.write_text(header + text)
        st = read_settings(path)
        for el in st.elements:
            assert len(st.symmetry_functions[el]) == per_element
        # the parsed parameters are the rounded values written in the lines
        li = st.symmetry_functions["Li"]
        assert {sf.eta for sf in li if sf.sftype == 2} == {
            29.43, 18.06, 11.08, 6.801, 4.174, 2.561, 1.572, 0.9646, 0.592}
        assert {sf.eta for sf in li if sf.sftype == 3} == {0.2222, 0.03556, 0.01389}
