"""``hpcnnp validate`` end to end on small synthetic potentials, and bad input."""
import csv

import numpy as np
import pytest

from hpcnnp.cli import main


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Reference + perturbed ("ML") potentials, labelled sets, reference trajectories."""
    from _validation_helpers import cells, labelled_set, make_potentials

    from hpcnnp.calculator import HDNNPCalculator
    from hpcnnp.validation.trajectory import md_settings, run_md
    root = tmp_path_factory.mktemp("validate")
    ref, ml = make_potentials(root)
    c = cells()
    labelled_set(root / "train.data", ref, [(c[0], 3, 0.05, None), (c[1], 3, 0.05, None),
                                            (c[2], 3, 0.05, None)], seed=1)
    labelled_set(root / "test.data", ref, [(c[0], 1, 0.05, None), (c[1], 1, 0.05, None),
                                           (c[2], 1, 0.05, None)], seed=2)
    labelled_set(root / "unseen.data", ref, [(c[2], 2, 0.15, "LCO hot")], seed=3,
                 comment_class=False)
    for T in (600, 900):
        run_md(c[0], HDNNPCalculator(ref),
               md_settings(T, 50, 5.0, equilibration=50.0, seed=T), root / f"aimd_{T}K.h5md")
    from ase.io import write

    from hpcnnp.structures import lco
    write(root / "lco.extxyz", lco())
    return root


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_validate_errors_and_trajectories(workdir, capsys):
    out = workdir / "out1"
    (workdir / "classes.csv").write_text("pattern,class\nhot rattle=,LCO hot\n")
    rc = main(["validate", "--potential", str(workdir / "ml"),
               "--train", str(workdir / "train.data"), "--test", str(workdir / "test.data"),
               "--unseen", str(workdir / "unseen.data"),
               "--class-map", str(workdir / "classes.csv"),
               "--reference-traj", str(workdir / "aimd_600K.h5md"),
               str(workdir / "aimd_900K.h5md"),
               "--md-equilibration", "20", "--output-dir", str(out)])
    assert rc == 0
    assert "validation.md" in capsys.readouterr().out
    rows = _csv(out / "errors.csv")
    got = {(r["set"], r["class"]) for r in rows}
    assert {("train", "LLZO cubic"), ("train", "LLZO tetragonal"), ("train", "LCO"),
            ("test", "all"), ("unseen", "LCO hot")} <= got
    for r in rows:
        assert 0 < float(r["energy_rmse_meV_per_atom"]) < 100
        assert 0 < float(r["force_rmse_eV_per_A"]) < 0.5
    md = (out / "validation.md").read_text()
    for heading in ("## Errors per structure class", "## Partial radial distribution",
                    "## Vibrational density of states", "## Li diffusion"):
        assert heading in md
    assert "| LLZO cubic | 3 |" in md and "Arrhenius activation energy" in md
    for name in ("parity/parity_LLZO_cubic.png", "parity/parity_LCO_hot.png",
                 "parity/parity_all.png", "rdf/rdf_600K.png", "vdos/vdos_900K.png",
                 "diffusion/msd.png", "diffusion/arrhenius.png",
                 "trajectories/hdnnp_600K.h5md"):
        assert (out / name).stat().st_size > 1000, name
    e = _csv(out / "parity" / "parity_LCO_energy.csv")
    assert len(e) == 4 and {r["set"] for r in e} == {"train", "test"}
    f = _csv(out / "parity" / "parity_LCO_forces.csv")
    assert len(f) == 4 * 48 * 3
    d = _csv(out / "diffusion" / "diffusion.csv")
    assert [float(r["T_K"]) for r in d] == [600.0, 900.0]
    assert all(float(r["D_ref_cm2_s"]) > 0 and float(r["D_ml_err_cm2_s"]) > 0 for r in d)
    rdf = _csv(out / "rdf" / "rdf_600K.csv")
    assert "g_Li-O_ref" in rdf[0] and "g_Li-O_ml" in rdf[0]
    # no temporary files left behind
    assert not list(out.rglob(".*tmp*"))


def test_validate_quality_and_transition(workdir):
    out = workdir / "out2"
    rc = main(["validate", "--potential", str(workdir / "ml"),
               "--properties", "quality,transition",
               "--reference-labeler", f"n2p2:{workdir / 'ref'}",
               "--quality-structure", str(workdir / "lco.extxyz"),
               "--relax-steps", "25", "--vacancy-mu", "removal",
               "--transition-engine", "ase", "--transition-range", "300", "400",
               "--transition-steps", "30", "--transition-sample-every", "5",
               "--transition-bin", "20", "--output-dir", str(out)])
    assert rc == 0
    q = _csv(out / "quality" / "quality.csv")
    names = [r["property"] for r in q]
    assert names == ["a", "c", "C11", "C12", "C44", "E_vac(Li)", "gamma(001)", "Q"]
    rel = np.array([float(r["relative_error"]) for r in q[:-1]])
    # (the CSV holds 6 significant digits)
    assert float(q[-1]["relative_error"]) == pytest.approx(np.sqrt(np.mean(rel ** 2)),
                                                           rel=1e-5)
    assert (out / "transition" / "transition.png").stat().st_size > 1000
    samples = _csv(out / "transition" / "ramp_samples.csv")
    assert len(samples) == 6
    md = (out / "validation.md").read_text()
    assert "## Property quality factor" in md and "**Q**" in md
    assert "## Tetragonal → cubic transition" in md and "criterion" in md


@pytest.mark.parametrize("args,message", [
    (["--train", "missing.data"], "missing.data: data file not found"),
    (["--properties", "errors,rfd", "--train", "x"], "unknown property 'rfd'"),
    (["--properties", "quality"], "property 'quality' needs --reference-labeler"),
    (["--properties", "teacher"], "property 'teacher' needs --reference-labeler"),
    ([], "nothing to validate"),
    (["--properties", "rdf", "--reference-traj", "a.xyz", "b.xyz",
      "--temperatures", "600"], "a.xyz: trajectory file not found"),
    (["--reference-labeler", "nosuchlabeler", "--properties", "quality"],
     "nosuchlabeler"),
    (["--quality-properties", "lattice,bogus", "--reference-labeler", "emt"],
     "--quality-properties: unknown bogus"),
])
def test_validate_bad_input(workdir, capsys, monkeypatch, args, message):
    monkeypatch.chdir(workdir)
    rc = main(["validate", "--potential", str(workdir / "ml"), "--output-dir",
               str(workdir / "bad")] + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("hpcnnp validate: error:") and message in err[-1], err


def test_validate_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--potential", "--train", "--test", "--unseen", "--reference-labeler",
                "--reference-traj", "--properties", "--output-dir", "--fit-window",
                "--transition-range", "--vacancy-mu"):
        assert opt in text
