"""``hpcnnp analyze``: files, figures and one-line errors."""

import h5py
import numpy as np
import pytest

from hpcnnp.cli import main


def _png_ok(path):
    """A real, non-blank figure: PNG signature, some size, varied pixels."""
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert len(data) > 15_000, (path, len(data))
    img = imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 400
    assert img[..., :3].std() > 0.05, path


@pytest.fixture(scope="module")
def cli_out(walk_h5, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "results"
    code = main(["analyze", str(walk_h5), "--segregation", "Co", "--li-density",
                 "--grid", "12", "12", "20", "--profiles", "--rdf", "--msd", "Li",
                 "--clusters", "Co", "--vdos", "--windows", "3", "-o", str(out)])
    assert code == 0
    return out


def test_cli_writes_tables_figures_and_summary(cli_out):
    expected = ["segregation_Co.csv", "segregation_Co.png", "density_Li.cube",
                "density_Li_proja.png", "density_Li_projb.png", "density_Li_projc.png",
                "density_Li_projc.npy", "profiles.csv", "profiles.png", "clusters_Co.csv",
                "clusters_Co.png", "rdf.csv", "rdf.png", "msd_Li.csv", "msd_Li.png",
                "vdos.csv", "vdos.png", "analysis.h5", "summary.md"]
    for name in expected:
        assert (cli_out / name).is_file(), name
    for png in cli_out.glob("*.png"):
        _png_ok(png)
    text = (cli_out / "summary.md").read_text()
    for section in ("## Segregation of Co", "## Li probability density",
                    "## Interdiffusion profiles", "## Co clusters", "## Partial g(r)",
                    "## MSD and diffusivity of Li", "## Vibrational DOS", "cm²/s",
                    "atoms/Å²", "Structure: GB test bicrystal"):
        assert section in text, section
    with h5py.File(cli_out / "analysis.h5") as f:
        assert {"segregation_Co", "density_Li", "rdf", "msd_Li", "diffusivity_Li",
                "clusters_Co", "profiles", "vdos"} <= set(f)
        assert f["density_Li/density"].shape == (12, 12, 20)
    seg = np.loadtxt(cli_out / "segregation_Co.csv", delimiter=",", skiprows=3)
    assert seg.shape[1] >= 6 and np.all(np.diff(seg[:, 0]) > 0)
    rdf_header = (cli_out / "rdf.csv").read_text().splitlines()[1]
    assert "g_Li-O" in rdf_header and "g_Co-Co" in rdf_header


@pytest.mark.parametrize("args, message", [
    ([], "no analysis requested"),
    (["--segregation", "Ni"], "species 'Ni' not present in the trajectory"),
    (["--rdf", "LiO"], "--rdf: pair 'LiO' must look like Li-O"),
    (["--li-density", "--start", "70"], "empty frame range"),
])
def test_cli_errors_are_one_line(walk_h5, tmp_path, capsys, args, message):
    code = main(["analyze", str(walk_h5), "-o", str(tmp_path / "o")] + args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("hpcnnp analyze: error:") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_cli_segregation_without_planes(walk_h5_nometa, tmp_path, capsys):
    code = main(["analyze", str(walk_h5_nometa), "--segregation", "Co", "-o",
                 str(tmp_path / "o")])
    assert code == 2
    assert "no grain-boundary/interface planes" in capsys.readouterr().err
