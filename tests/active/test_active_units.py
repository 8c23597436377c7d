"""Unit tests of hpcnnp.active: the disagreement measure, the trust band, the
diversity filter, fingerprints, labelers and the campaign file."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from hpcnnp.active import (committee_disagreement, committee_evaluate, diversity_filter,
                           load_config, select_frames, structure_fingerprint)
from hpcnnp.errors import HpcnnpError, InputFileError


def _teacher_and_frame(toy):
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    return Potential.from_n2p2(toy / "teacher"), n2p2.read_data(toy / "input.data")[0]


# ------------------------------------------------------------------- disagreement
def test_active_identical_members_give_zero_disagreement(toy):
    from hpcnnp.potential import Potential

    members = [Potential.from_n2p2(toy / "teacher") for _ in range(3)]
    _, atoms = _teacher_and_frame(toy)
    sigma_f, sigma_e, n_warn = committee_disagreement(members, atoms)
    assert sigma_f == 0.0 and sigma_e == 0.0
    assert isinstance(n_warn, int) and n_warn >= 0


def test_active_scaled_output_layer_gives_known_sigma(toy):
    """Members whose (linear) output layers are scaled by 1, 1+eps, 1-eps predict
    F, (1+eps)F, (1-eps)F: sigma_F,i = sqrt(2/3) eps |F_i|, sigma_E = sqrt(2/3) eps |E|/N."""
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    eps = 0.1
    members = []
    for c in (1.0, 1.0 + eps, 1.0 - eps):
        pot = Potential.from_n2p2(toy / "teacher")
        weights = {}
        for el in pot.elements:
            w = n2p2.read_weights(toy / "teacher" / n2p2.weights_filename(el),
                                  pot.settings.n_weights(el)).copy()
            n_last = pot.settings.layer_sizes(el)[-2] + 1      # weights + bias of the output
            w[-n_last:] *= c
            weights[el] = w
        pot.set_weights(weights)
        members.append(pot)
    teacher, atoms = _teacher_and_frame(toy)
    ref = teacher.compute(atoms)
    assert np.all(ref.energies != 0)
    sigma_f, sigma_e, _ = committee_disagreement(members, atoms)
    factor = math.sqrt(2.0 / 3.0) * eps
    assert sigma_f == pytest.approx(factor * np.linalg.norm(ref.forces, axis=1).max(),
                                    rel=1e-10)
    assert sigma_e == pytest.approx(factor * abs(ref.energy) / len(atoms), rel=1e-10)
    full = committee_evaluate(members, atoms)
    np.testing.assert_allclose(full["sigma_f_atoms"],
                               factor * np.linalg.norm(ref.forces, axis=1), rtol=1e-10)


def test_active_disagreement_is_max_over_atoms():
    """Two fake members differing by d on one atom only: sigma_F = |d|/2 (1/K moments)."""
    from types import SimpleNamespace

    from ase import Atoms

    d = np.array([0.3, -0.4, 0.0])                     # |d| = 0.5

    class Fake:
        def __init__(self, shift, warnings):
            self.shift, self.warnings = shift, warnings

        def compute(self, atoms, forces=True, stress=False):
            f = np.zeros((len(atoms), 3))
            f[2] += self.shift
            return SimpleNamespace(energy=2.0 * np.linalg.norm(self.shift), forces=f,
                                   n_warnings=self.warnings)

    atoms = Atoms("Li4", positions=np.arange(12.0).reshape(4, 3))
    sigma_f, sigma_e, n_warn = committee_disagreement([Fake(0 * d, 5), Fake(d, 0)], atoms)
    assert sigma_f == pytest.approx(0.25)
    assert sigma_e == pytest.approx(0.5 * 1.0 / 4)     # energies 0 and 1 eV, 4 atoms
    assert n_warn == 5                                  # member 0's warnings


# ----------------------------------------------------------------- trust band
def test_active_band_selection():
    sigma = np.array([0.01, 0.05, 0.2, 0.35, 0.9, np.nan, 0.02, 0.1])
    warn = np.array([0, 0, 0, 0, 3, 0, 2, 0])
    failed = np.array([0, 0, 0, 0, 0, 0, 0, 1], bool)
    sel = select_frames(sigma, warn, sigma_low=0.05, sigma_high=0.35, failed=failed)
    assert list(sel["classes"]) == ["accurate", "candidate", "candidate", "failed", "failed",
                                    "failed", "candidate", "failed"]
    assert sel["candidate"].tolist() == [1, 2, 6]        # 6: extrapolation warning
    assert sel["failed"].tolist() == [3, 4, 5, 7]
    off = select_frames(sigma, warn, sigma_low=0.05, sigma_high=0.35, extrapolation=False)
    assert off["candidate"].tolist() == [1, 2, 7] and off["accurate"].tolist() == [0, 6]
    with pytest.raises(ValueError, match="sigma_low"):
        select_frames(sigma, sigma_low=0.4, sigma_high=0.35)


# ------------------------------------------------------------- diversity filter
def test_active_diversity_filter_removes_near_duplicates_keeps_farthest():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [10.0, 10.0]])
    pts = np.concatenate([c + 1e-3 * rng.normal(size=(5, 2)) for c in centres])
    priority = np.zeros(len(pts))
    priority[7] = 1.0                                    # a member of cluster 1 first
    picked = diversity_filter(pts, min_distance=0.1, priority=priority)
    assert picked[0] == 7
    assert sorted(k // 5 for k in picked) == [0, 1, 2, 3]   # one frame per cluster
    assert picked[1] // 5 == 3                           # then the farthest: (10, 10)
    # max_select: the farthest clusters survive
    assert [k // 5 for k in diversity_filter(pts, 0.1, max_select=2, priority=priority)] \
        == [1, 3]
    # without min_distance only max_select limits, duplicates are then allowed
    assert len(diversity_filter(pts, 0.0)) == len(pts)
    # a reference set: frames near it are not picked at all
    picked = diversity_filter(pts, 0.1, reference=centres[:3])
    assert [k // 5 for k in picked] == [3]
    assert diversity_filter(np.zeros((0, 2)), 0.1) == []
    # distances are RMS over components: (0,0) and (1,1) are 1 apart
    assert diversity_filter(np.array([[0.0, 0.0], [1.0, 1.0]]), 0.99) == [0, 1]
    assert diversity_filter(np.array([[0.0, 0.0], [1.0, 1.0]]), 1.01) == [0]


def test_active_fingerprint_invariant_and_discriminating(toy):
    teacher, atoms = _teacher_and_frame(toy)
    fp = structure_fingerprint(teacher, atoms)
    n_sf = sum(len(teacher.symmetry_function_list[el]) for el in teacher.elements)
    assert fp.shape == (2 * n_sf,)
    moved = atoms.copy()
    moved.positions += [0.7, -0.3, 1.1]
    moved.wrap()
    np.testing.assert_allclose(structure_fingerprint(teacher, moved), fp, atol=1e-10)
    shuffled = atoms[np.random.default_rng(1).permutation(len(atoms))]
    np.testing.assert_allclose(structure_fingerprint(teacher, shuffled), fp, atol=1e-10)
    squeezed = atoms.copy()
    squeezed.set_cell(atoms.cell * 0.9, scale_atoms=True)
    assert np.abs(structure_fingerprint(teacher, squeezed) - fp).max() > 0.05


# -------------------------------------------------------------------- labelers
def test_active_labelers_and_recorded_failures(toy):
    from ase import Atoms

    from hpcnnp.active.labeling import label_batch, label_batch_to_file, make_labeler
    from hpcnnp.calculator import HDNNPCalculator

    # one labeler table (hpcnnp.sampling.labelers): the checked calculator wraps the engine
    assert isinstance(make_labeler("hdnnp", {"potential": str(toy / "teacher")}).inner,
                      HDNNPCalculator)
    with pytest.raises(HpcnnpError, match="cannot import"):
        make_labeler("no_such_module_xyz:f")
    with pytest.raises(HpcnnpError, match="labeler hdnnp: unknown option"):
        make_labeler("hdnnp", {"nonsense": 1})
    # EMT knows O but not Li: the Li frame fails and is recorded, the O frame is labelled
    _, lio = _teacher_and_frame(toy)
    oxygen = Atoms("O2", positions=[[0, 0, 0], [1.3, 0, 0]], cell=[8, 8, 8], pbc=True)
    frames = [lio, oxygen]
    for k, a in enumerate(frames):
        a.info["id"] = f"frame_{k}"
    out = label_batch("ase.calculators.emt:EMT", {}, frames)
    assert out[0][0] is None and "NotImplementedError" in out[0][1]
    assert out[1][1] is None and np.isfinite(out[1][0].get_potential_energy())
    info = label_batch_to_file("ase.calculators.emt:EMT", {}, frames, toy / "emt_batch")
    assert info["labelled"] == ["frame_1"] and info["failures"][0]["id"] == "frame_0"
    from hpcnnp.io import n2p2
    written = n2p2.read_data(toy / "emt_batch.data")
    assert len(written) == 1 and written[0].get_chemical_symbols() == ["O", "O"]


# ------------------------------------------------------------- campaign file
_GOOD = """\
data: input.data
input_nn: input.nn
committee:
  size: 3
exploration:
  structures:
    - file: start.data
  temperatures: [600, 1200]
selection:
  sigma_low: 0.05
  sigma_high: 0.35
labeler:
  name: hdnnp
  options: {potential: teacher}
"""


def _copy_inputs(toy, folder):
    for name in ("input.data", "input.nn", "start.data"):
        shutil.copy(toy / name, folder / name)
    shutil.copytree(toy / "teacher", folder / "teacher")


@pytest.mark.parametrize("change, line, message", [
    (("committee:\n  size: 3", "committee:\n  size: 3\n  epoch: 4"), 5,
     "committee.epoch: unknown key"),
    (("committee:\n  size: 3", "committee:\n  size: 1"), 4,
     "committee.size: must be >= 2"),
    (("data: input.data\n", ""), None, "data: required key is missing"),
    (("sigma_high: 0.35", "sigma_high: 0.01"), 11,
     "selection.sigma_high: must be larger than selection.sigma_low"),
    (("sigma_low: 0.05", "sigma_low: low"), 10, "selection.sigma_low: must be a number"),
    (("temperatures: [600, 1200]", "temperatures: [600, -5]"), 8,
     "exploration.temperatures.1: must be > 0 K (got -5)"),
    (("- file: start.data", "- fiel: start.data"), 7,
     "exploration.structures.0: needs exactly one of file, builder"),
    (("- file: start.data", "- {file: start.data, temperatures: [3000, -1]}"), 7,
     "exploration.structures.0.temperatures.1: must be > 0 K"),
    (("- file: start.data", "- file: missing.data"), 7,
     "exploration.structures.0.file: file not found"),
    (("labeler:", "labeller:"), 12, "labeller: unknown key"),
    (("input_nn: input.nn", "input_nn: nowhere.nn"), 2, "input_nn: file not found"),
    (("options: {potential: teacher}", "options: {potential: nowhere}"), 14,
     "potential folder not found"),
    (("name: hdnnp\n  options: {potential: teacher}", "name: emt\n  bogus: 1"), 14,
     "labeler.bogus: labeler emt has no option 'bogus'"),
    (("name: hdnnp", "name: nonesuch"), 13, "labeler.name: unknown labeler 'nonesuch'"),
    (("input_nn: input.nn", "input_nn: input.nn\nsettings: input.nn"), 3,
     "settings: given twice"),
])
def test_active_bad_config_names_key_and_line(toy, tmp_path, change, line, message):
    _copy_inputs(toy, tmp_path)
    path = tmp_path / "campaign.yaml"
    old, new = change
    assert old in _GOOD
    path.write_text(_GOOD.replace(old, new))
    with pytest.raises(InputFileError) as info:
        load_config(path)
    assert message in str(info.value)
    assert info.value.line == line
    assert str(path) in str(info.value)


def test_active_good_config_defaults_and_paths(toy, tmp_path):
    _copy_inputs(toy, tmp_path)
    (tmp_path / "campaign.yaml").write_text(_GOOD)
    cfg = load_config(tmp_path / "campaign.yaml")
    assert cfg["committee.size"] == 3 and cfg.committee.epochs is None
    assert cfg["exploration.temperatures"] == [600.0, 1200.0]
    assert cfg["exploration.structures"][0]["file"] == str(tmp_path / "start.data")
    assert Path(cfg["data"]) == tmp_path / "input.data"
    assert cfg.workdir == tmp_path
    assert cfg["parallel.site"] == "local" and cfg["stop.accurate_fraction"] == 0.99
    assert cfg.as_dict()["selection"]["sigma_high"] == 0.35
    assert cfg["labeler.options"] == {"potential": str(tmp_path / "teacher")}
    # the spellings of the project file (hpcnnp run): settings, site, inline options
    text = _GOOD.replace("input_nn:", "settings:") + "site: local\n"
    text = text.replace("name: hdnnp\n  options: {potential: teacher}",
                        "name: emt\n  stress: false\n  batch: 4")
    (tmp_path / "campaign.yaml").write_text(text)
    cfg = load_config(tmp_path / "campaign.yaml")
    assert cfg["input_nn"] == str(tmp_path / "input.nn")
    assert cfg["parallel.site"] == "local" and cfg["labeler.batch"] == 4
    assert cfg["labeler.name"] == "emt" and cfg["labeler.options"] == {"stress": False}


def test_active_cli_help_and_errors(toy, tmp_path, capsys):
    from hpcnnp import cli
    from hpcnnp.active.config import OPTIONS

    with pytest.raises(SystemExit):
        cli.main(["active", "--help"])
    text = capsys.readouterr().out
    for opt in OPTIONS:                                   # every key is documented
        assert opt.key in text, opt.key
    _copy_inputs(toy, tmp_path)
    (tmp_path / "campaign.yaml").write_text(_GOOD.replace("size: 3", "size: three"))
    assert cli.main(["active", str(tmp_path / "campaign.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpcnnp active: error: ") and "committee.size" in err
    (tmp_path / "campaign.yaml").write_text(_GOOD)
    (tmp_path / "iteration_000").mkdir()
    assert cli.main(["active", str(tmp_path / "campaign.yaml")]) == 2
    assert "use --resume" in capsys.readouterr().err


# -------------------------------------------------------- starting structures
def test_active_starting_structures_from_files_builders_and_data(toy):
    from hpcnnp.active.explore import starting_structures

    entries = [{"file": str(toy / "start.data"), "repeat": [1, 1, 2]},
               {"builder": "lco", "name": "LCO"},
               {"builder": "supercell", "options": {"atoms": {"builder": "lco"},
                                                    "repeat": [2, 1, 1]}},
               {"data": [0, -1]}]
    images = starting_structures(entries, str(toy / "input.data"))
    assert [a.info["name"] for a in images] == ["file:start.data", "LCO",
                                                "builder:supercell", "data[0]", "data[-1]"]
    assert [len(a) for a in images] == [32, 12, 24, 16, 16]
    assert all(a.calc is None for a in images)
    with pytest.raises(HpcnnpError, match=r"structures\[0\] \(builder\): unknown builder"):
        starting_structures([{"builder": "no_such_builder"}], None)
    with pytest.raises(HpcnnpError, match=r"data index 99 out of range"):
        starting_structures([{"data": [99]}], str(toy / "input.data"))


def test_active_structure_temperatures_override_the_default(tmp_path):
    """An entry's own temperatures (e.g. a melt) replace exploration.temperatures for it
    and its strained variants, also after the extxyz round trip of the learner."""
    import ase.io

    from hpcnnp.active.explore import run_temperatures, starting_structures

    entries = [{"builder": "lco", "name": "melt", "temperatures": [2500, 3000],
                "strains": [0.03]},
               {"builder": "lco", "name": "hot", "temperatures": [2000]},
               {"builder": "lco", "name": "LCO"}]
    images = starting_structures(entries, None)
    ase.io.write(tmp_path / "s.xyz", images, format="extxyz")
    back = ase.io.read(tmp_path / "s.xyz", index=":")
    for imgs in (images, back):
        assert [run_temperatures(a, [1200, 1500]) for a in imgs] == [
            [2500.0, 3000.0], [2500.0, 3000.0], [2000.0], [1200.0, 1500.0]]
    assert back[1].info["variant"] == "strain +3.0%"


def test_active_warm_start_member_starts_from_old_weights(toy, tmp_path):
    """prepare_member(old_weights=...) copies the weights and sets
    use_old_weights_short: with 0 epochs the trained member is the old potential."""
    from hpcnnp.active.committee import member_done, prepare_member, train_member
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    from hpcnnp.errors import HpcnnpError

    old = tmp_path / "old"
    shutil.copytree(toy / "teacher", old)
    # the teacher's 8-8 networks do not fit the students' 6-6 template: a clear error
    with pytest.raises(HpcnnpError, match="network of"):
        prepare_member(tmp_path / "m", toy / "input.nn", seed=5, test_fraction=0.2,
                       epochs=0, old_weights=old, scaling=old / "scaling.data")
    (tmp_path / "teacher.nn").write_text((toy / "input.nn").read_text().replace(
        "global_nodes_short 6 6", "global_nodes_short 8 8"))
    member = prepare_member(tmp_path / "m", tmp_path / "teacher.nn", seed=5, epochs=0,
                            old_weights=old, scaling=old / "scaling.data")
    st = n2p2.read_settings(member / "input.nn")
    assert st.get_flag("use_old_weights_short") and st.get("random_seed").split()[0] == "5"
    info = train_member(member, toy / "input.data", old / "scaling.data")
    assert info["skipped"] is False and info["epochs"] == 0
    atoms = n2p2.read_data(toy / "input.data")[0]
    np.testing.assert_allclose(Potential.from_n2p2(member).compute(atoms).forces,
                               Potential.from_n2p2(old).compute(atoms).forces, atol=1e-12)
    assert member_done(member, toy / "input.data", old / "scaling.data") is not None
    assert train_member(member, toy / "input.data", old / "scaling.data")["skipped"] is True


def test_active_evaluate_trajectory_marks_broken_frames(toy):
    """Frames from elsewhere (e.g. a LAMMPS run) are judged frame by frame; a frame
    the engine rejects (atoms 0.05 A apart) is 'failed', not an exception."""
    from hpcnnp.active.explore import evaluate_trajectory
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    members = [Potential.from_n2p2(toy / "teacher") for _ in range(2)]
    frames = n2p2.read_data(toy / "input.data")[:2]
    broken = frames[0].copy()
    broken.positions[1] = broken.positions[0] + [0.05, 0.0, 0.0]
    rows = evaluate_trajectory(members, frames + [broken])
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[0]["sigma_f"] == 0.0 and np.isnan(rows[2]["sigma_f"])
    sel = select_frames([r["sigma_f"] for r in rows], sigma_low=0.05, sigma_high=0.35)
    assert sel["failed"].tolist() == [2]


def test_warm_start_transfer_is_exact(toy, toy_campaign, tmp_path):
    """A member warm-started on a grown data set (new scaling.data, new
    normalisation) predicts, before any update, exactly what the old member does:
    first-layer weights re-expressed for the new SF scaling, old normalisation kept."""
    from hpcnnp.active.committee import prepare_member
    from hpcnnp.descriptors.scaling import run_scaling
    from hpcnnp.io import n2p2
    from hpcnnp.potential import Potential

    import shutil

    workdir, _, _ = toy_campaign
    old = tmp_path / "old"                  # a trained member in normalised units
    shutil.copytree(workdir / "iteration_000" / "train" / "committee" / "member_0", old,
                    ignore=shutil.ignore_patterns("checkpoint"))
    n2p2.write_settings(old / "input.nn", n2p2.read_settings(old / "input.nn"),
                        {"mean_energy": "-3.25", "conv_energy": "2.5", "conv_length": "1.3"})
    template = tmp_path / "template.nn"     # the campaign's: normalise on the new data
    n2p2.write_settings(template, n2p2.read_settings(toy / "input.nn"),
                        {"normalize_data_set": "ref"})
    data = tmp_path / "grown.data"
    images = n2p2.read_data(toy / "input.data")
    rng = np.random.default_rng(3)
    for a in images:                            # wider SF ranges than the old data
        a.positions += rng.normal(0, 0.15, a.positions.shape)
    n2p2.write_data(data, images)
    run_scaling(old / "input.nn", data, tmp_path / "scal", histograms=False,
                neighbors_out=False, progress_interval=0)
    member = prepare_member(tmp_path / "m", template, seed=3, old_weights=old,
                            scaling=tmp_path / "scal" / "scaling.data")
    (member / "scaling.data").write_bytes((tmp_path / "scal" / "scaling.data").read_bytes())
    assert (member / "scaling.data").read_bytes() != (old / "scaling.data").read_bytes()
    new_settings = n2p2.read_settings(member / "input.nn")
    assert new_settings.normalization == pytest.approx((-3.25, 2.5, 1.3))
    assert "normalize_data_set" not in new_settings
    a, b = Potential.from_n2p2(old), Potential.from_n2p2(member)
    for atoms in images[:3]:
        ra, rb = a.compute(atoms), b.compute(atoms)
        assert rb.energy == pytest.approx(ra.energy, rel=1e-10, abs=1e-9)
        np.testing.assert_allclose(rb.forces, ra.forces, rtol=1e-8, atol=1e-9)


def test_stop_rule_needs_measured_convergence(toy, toy_cfg, tmp_path):
    """Converged only when, in this iteration's exploration, enough frames are below
    σ_low, every run finished and the warning rate is low, and not before
    stop.min_iterations."""
    from hpcnnp.active import ActiveLearner

    def stop(n=2, accurate=0.95, ended=(None, None), rate=0.0, selected=3, **cfg):
        learner = ActiveLearner(toy_cfg(toy, tmp_path, stop=dict(
            {"max_iterations": 5, "accurate_fraction": 0.9, "min_iterations": 3}, **cfg)),
            stream=None)
        explore = {"runs": [{"ended": e} for e in ended]}
        select = {"fraction_accurate": accurate, "warnings": {"rate": rate},
                  "counts": {"selected": selected}}
        return learner._stop_rule(n, explore, select)

    assert stop() == "converged"
    assert stop(n=1) is None                                    # before min_iterations
    assert stop(accurate=0.8) is None
    assert stop(ended=(None, "step 40: atoms closer than 1.0 Å")) is None
    assert stop(ended=(None, "step 40"), finished_runs=False) == "converged"
    assert stop(rate=1e-2, max_warning_rate=1e-3) is None
    assert stop(rate=1e-4, max_warning_rate=1e-3) == "converged"
    assert stop(accurate=0.5, selected=0) == "no new frames"


def test_test_draw_and_failure_precursors():
    from hpcnnp.active.selection import draw_test_frames, failure_precursors

    groups = {"A": list(range(10)), "B": [10, 11], "C": []}
    got = draw_test_frames(groups, 3, have={"A": 1}, seed=[1, 0])
    assert len(got["A"]) == 2 and set(got["A"]) <= set(groups["A"])
    assert got["B"] == [10, 11] and "C" not in got
    assert draw_test_frames(groups, 3, have={"A": 1}, seed=[1, 0]) == got   # seeded
    assert draw_test_frames(groups, 3, have={"A": 3, "B": 3}) == {}
    frames = [{"status": "ok", "stored": True, "d_min": d} for d in (1.9, 1.8, 1.3, 1.1)]
    frames.append({"status": "failed", "stored": True, "d_min": 0.7})
    assert failure_precursors(frames, 1.2, count=2) == [2, 1]   # latest first, >= floor
    assert failure_precursors(frames[:4], 1.2) == []            # the run did not fail
    assert failure_precursors(frames, 1.2, count=0) == []
