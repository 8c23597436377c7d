"""SF pruning (hpcnnp.descriptors.prune): by range (n2p2's nnp-prune range) and
by tail (rare-event SFs)."""

import shutil

import numpy as np
import pytest

from hpcnnp.descriptors.prune import prune_by_range, prune_by_tail
from hpcnnp.io import n2p2


@pytest.fixture
def settings(refdata, tmp_path):
    nn = tmp_path / "input.nn"
    shutil.copy(refdata / "synth5_A" / "potential" / "input.nn", nn)
    st = n2p2.read_settings(nn)
    stats = {}
    for el in st.elements:
        n = len(st.symmetry_functions[el])
        # min 0, max 1, mean 0.5, sigma 0.25: tail (max - mean)/sigma = 2
        stats[el] = np.tile([0.0, 1.0, 0.5, 0.25], (n, 1))
    stats["Li"][0] = [0.3, 0.3 + 1e-6, 0.3, 1e-7]       # no range
    stats["Li"][1] = [0.0, 1.0, 0.02, 0.02]              # tail 49: a rare-event SF
    n2p2.write_scaling(tmp_path / "scaling.data", st.elements, stats)
    return nn, st


def test_prune_by_range_comments_out_flat_sfs(settings):
    nn, st = settings
    counts = prune_by_range(nn, nn.with_name("scaling.data"), 1e-4)
    assert counts["Li"] == 1 and sum(counts.values()) == 1
    new = n2p2.read_settings(nn)
    assert len(new.symmetry_functions["Li"]) == len(st.symmetry_functions["Li"]) - 1
    assert sum(ln.startswith("#pruned (range < 0.0001): symfunction_short")
               for ln in nn.read_text().splitlines()) == 1


@pytest.mark.parametrize("max_tail, pruned", [(100.0, 0), (20.0, 1), (1.5, None)])
def test_prune_by_tail(settings, tmp_path, max_tail, pruned):
    nn, st = settings
    out = tmp_path / "pruned.nn"
    before = nn.read_text()
    if pruned is None:         # every SF has tail 2 > 1.5: refuse, touch nothing
        with pytest.raises(ValueError, match="every SF"):
            prune_by_tail(nn, nn.with_name("scaling.data"), max_tail, output=out)
        assert not out.exists() and nn.read_text() == before
        return
    counts = prune_by_tail(nn, nn.with_name("scaling.data"), max_tail, output=out)
    assert counts["Li"] == pruned and sum(counts.values()) == pruned
    assert nn.read_text() == before                      # output= leaves the input alone
    new = n2p2.read_settings(out)
    assert (len(new.symmetry_functions["Li"])
            == len(st.symmetry_functions["Li"]) - pruned)
    marked = [ln for ln in out.read_text().splitlines() if ln.startswith("#pruned (tail")]
    assert len(marked) == pruned
    if pruned:
        # it is Li's SF number 2 in n2p2's order (its line in the file)
        line = before.splitlines()[st.symmetry_functions["Li"][1].line - 1]
        assert marked[0].endswith(line)
