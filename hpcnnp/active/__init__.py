"""Active learning: a committee of HDNNPs finds the structures worth labelling.

A potential is only as good as its data set, and the structures that matter in
production (a Li hop across an LLZO|LCO interface, a Co atom at a grain boundary
at 1200 K) are seldom in the first data set.  Query by committee finds them:

1. **train** K potentials on the same data, differing only in their random
   initial weights and train/test splits (:mod:`.committee`);
2. **explore**: run MD with one member on the campaign's structures and
   temperatures and let all K judge every ``stride``-th frame (:mod:`.explore`);
   where the data constrain the networks they agree, elsewhere they scatter.  The
   measure is DP-GEN's max force deviation
   σ_F = max_i sqrt(mean_k |F_k,i − F̄_i|²) (eV/Å);
3. **select** the frames inside the trust band σ_low ≤ σ_F < σ_high (below: already
   accurate; above: unphysical) plus frames with extrapolation warnings, and thin
   them by farthest-point sampling on SF fingerprints (:mod:`.selection`);
4. **label** them with the reference method (:mod:`.labeling`) and **retrain** the
   committee on the enlarged data set;
5. repeat until (almost) every explored frame is accurate.

Zhang, Wang, Chen, Lu, Wang, E, "DP-GEN: a concurrent learning platform for the
generation of reliable deep learning based potential energy models",
Comput. Phys. Commun. 253, 107206 (2020), doi:10.1016/j.cpc.2020.107206;
for HDNNPs: Artrith & Behler, Phys. Rev. B 85, 045439 (2012),
doi:10.1103/PhysRevB.85.045439.

Pitfalls: σ_F measures disagreement, not error — K networks can agree and all be
wrong (which is why extrapolation warnings count too, and why the committee
needs different train/test splits); σ_high must lie well above the target force
error, otherwise the frames that need labelling most are discarded; the first
committee's σ_F is large everywhere when its data are tiny, so the first
iterations select many "failed" frames — start exploring near the data (low
temperatures, short runs) and widen step by step.

>>> from hpcnnp.active import ActiveLearner                  # doctest: +SKIP
>>> ActiveLearner("campaign.yaml").run(iterations=3)

The command line is ``hpcnnp active campaign.yaml`` (see ``--help`` for the
campaign file's keys).
"""

from hpcnnp.active.committee import committee_disagreement, committee_evaluate, load_committee
from hpcnnp.active.config import ActiveConfig, load_config
from hpcnnp.active.labeling import make_labeler
from hpcnnp.active.learner import STEPS, ActiveInterrupted, ActiveLearner
from hpcnnp.active.selection import diversity_filter, select_frames, structure_fingerprint

__all__ = ["ActiveLearner", "ActiveInterrupted", "ActiveConfig", "load_config", "STEPS",
           "committee_disagreement", "committee_evaluate", "load_committee",
           "select_frames", "diversity_filter", "structure_fingerprint", "make_labeler"]
