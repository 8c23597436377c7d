"""Library plots leave matplotlib's global state alone (backend, rcParams, pyplot).

The figures are made in a fresh interpreter whose backend is set to ``svg`` from the
environment; a library that called ``matplotlib.use("Agg")`` or changed ``rcParams``
would be seen there.  The PNGs must still be written.
"""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path
    import numpy as np
    import matplotlib
    out = Path(sys.argv[1])
    backend, rc = matplotlib.get_backend(), dict(matplotlib.rcParams)

    from hpcnnp.active.record import plot_histogram, plot_summary
    rec = {"iteration": 0, "histogram": {"edges": [0.01, 0.1, 1.0], "counts": [5, 2]},
           "thresholds": {"sigma_low": 0.05, "sigma_high": 0.5},
           "counts": {"accurate": 5, "candidate": 2, "failed": 0, "selected": 2,
                      "labelled": 2},
           "fraction_accurate": 0.7, "sigma_f": {"mean": 0.1},
           "committee": {"mean_errors": {"force_test": 0.2, "energy_test": 0.003}}}
    plot_histogram(out / "hist.png", rec, sigma_after=[0.02, 0.03])
    plot_summary(out / "summary.png", [rec, dict(rec, iteration=1)])

    from hpcnnp.training.outputs import make_plots
    curve = np.column_stack([np.arange(4)] + [np.linspace(1, 0.1, 4) * (k + 1)
                                               for k in range(16)])
    make_plots(out, curve, ["energy", "force"], ["epoch"] + [f"c{k}" for k in range(16)],
               parity={"energy": ([0, 1], [True, False], [0.1, 0.2], [0.11, 0.19])})

    from hpcnnp.validation import plots
    r = np.linspace(0.5, 6, 50)
    g = {("Li", "O"): np.exp(-(r - 2) ** 2)}
    plots.rdf_plot(r, g, g, out / "rdf.png", title="test")
    plots.arrhenius_plot([("ref", [600, 800, 1000], [1e-7, 1e-6, 4e-6], [1e-8] * 3, None,
                           plots.REF_STYLE)], out / "arrhenius.png")

    assert matplotlib.get_backend() == backend, (backend, matplotlib.get_backend())
    changed = {k for k in rc if rc[k] != matplotlib.rcParams[k]
               and not (isinstance(rc[k], float) and rc[k] != rc[k])}
    assert not changed, changed
    assert "matplotlib.pyplot" not in sys.modules
    print("OK")
''')


def test_plots_keep_global_matplotlib_state(tmp_path):
    env = {"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "MPLCONFIGDIR": str(tmp_path / "mpl")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr[-3000:]
    for name in ("hist", "summary", "learning-curve", "parity-energy", "rdf", "arrhenius"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_no_global_matplotlib_calls_in_library_code():
    pattern = re.compile(r"matplotlib\.use\(|rcParams\s*(\[|\.update)|import matplotlib"
                         r"\.pyplot|from matplotlib import pyplot|plt\.style\.use")
    hits = [f"{p.relative_to(ROOT)}:{k}" for folder in ("hpcnnp", "analysis")
            for p in (ROOT / folder).rglob("*.py")
            for k, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
