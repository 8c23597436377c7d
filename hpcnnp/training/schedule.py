"""Random streams, data distribution, update plan and update candidates.

Random numbers (n2p2-formats.md §10.1).  n2p2 draws from GSL generators (mt19937
on rank 0, taus elsewhere) and std::mt19937 engines; hpcnnp cannot reproduce those
streams bit for bit, so a run of hpcnnp and one of n2p2 with the same
``random_seed`` make different (statistically equivalent) choices.  hpcnnp derives
independent numpy ``Generator`` (PCG64) streams from ``random_seed`` with
:class:`numpy.random.SeedSequence`:

================  =============================================================
stream            used for (identical on all ranks unless noted)
================  =============================================================
``distribution``  which rank owns which structure (random, quotas as n2p2)
``split``         train/test split: one uniform number per structure in file
                  order (``u < test_fraction`` ⇒ test) — independent of the number
                  of ranks, so 1 and N ranks train on the same training set
``weights``       initial weights (uniform in [weights_min, weights_max))
``schedule``      the shuffled list of energy/force updates of every epoch
``rank``          per rank (child r of a fourth sequence): shuffling of the
                  rank's own update-candidate lists
================  =============================================================

The generator states (``bit_generator.state``) are part of the checkpoint.
"""

from __future__ import annotations

import numpy as np

from hpcnnp.training.config import SM_SORT

__all__ = ["Streams", "distribute", "UpdatePlan", "Candidates", "epoch_schedule"]


class Streams:
    """The random streams of one rank (see the module docstring)."""

    NAMES = ("distribution", "split", "weights", "schedule", "rank")

    def __init__(self, seed, rank, size):
        root = np.random.SeedSequence(int(seed) % (1 << 64))
        dist, split, weights, schedule, ranks = root.spawn(5)
        self.distribution = np.random.Generator(np.random.PCG64(dist))
        self.split = np.random.Generator(np.random.PCG64(split))
        self.weights = np.random.Generator(np.random.PCG64(weights))
        self.schedule = np.random.Generator(np.random.PCG64(schedule))
        self.rank = np.random.Generator(np.random.PCG64(ranks.spawn(size)[rank]))

    def state(self):
        return {name: getattr(self, name).bit_generator.state for name in self.NAMES}

    def set_state(self, state):
        for name in self.NAMES:
            getattr(self, name).bit_generator.state = state[name]


def distribute(n_structures, size, rng):
    """Owner rank of every structure (n2p2's quotas: ⌊N/P⌋ each, ranks 1 … N mod P
    one more), structures dealt at random.  Returns an int array (N,)."""
    n, p = int(n_structures), int(size)
    quota = np.full(p, n // p, dtype=np.int64)
    rest = n % p
    for r in range(1, rest + 1):
        quota[r % p] += 1
    owner = np.repeat(np.arange(p), quota)
    perm = rng.permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[perm] = owner
    return out


class UpdatePlan:
    """Updates per epoch and patterns per update of one property (§10.3).

    Parameters
    ----------
    batch : int
        ``task_batch_size_<p>`` (0: one update with floor(f · local candidates)).
    fraction : float
        Fraction of the training patterns used per epoch.
    n_train_global : int
        Training patterns of the property over all ranks.
    n_local : int
        Candidates of this rank.
    size : int
        Number of MPI ranks.
    """

    def __init__(self, batch, fraction, n_train_global, n_local, size):
        self.batch = int(batch)
        self.fraction = float(fraction)
        if self.batch == 0:
            self.per_update = int(n_local * self.fraction)
            self.n_updates = 1
        else:
            self.per_update = self.batch
            self.n_updates = int((n_train_global * self.fraction) / self.batch / size)
        # a rank without candidates cannot contribute patterns
        if n_local == 0:
            self.per_update = 0


class Candidates:
    """One rank's update candidates of one property with the selection cursor.

    ``keys`` (n, k) int array: energy (s,), force (s, a, c) — local structure
    index, atom index, component.  ``order`` is the current permutation of the
    candidates, ``pos`` the cursor; ``errors`` the |error| of every candidate from
    the last error evaluation (training units; energy per atom).
    """

    def __init__(self, keys):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.n = len(self.keys)
        self.order = np.arange(self.n, dtype=np.int64)
        self.pos = 0
        self.errors = np.zeros(self.n)

    def prepare_epoch(self, mode, rng):
        """Shuffle (SM_RANDOM/SM_THRESHOLD) or sort by descending error (SM_SORT),
        reset the cursor (n2p2: at the start of every epoch)."""
        if mode == SM_SORT:
            self.order = np.argsort(-self.errors, kind="stable").astype(np.int64)
        else:
            rng.shuffle(self.order)
        self.pos = 0

    def next(self):
        """Index (into keys) of the next candidate; the cursor wraps around."""
        if self.pos >= self.n:
            self.pos = 0
        k = int(self.order[self.pos])
        self.pos += 1
        return k


def epoch_schedule(n_updates, rng):
    """The epoch's update sequence: property indices (0 = energy, 1 = force …),
    filled in reverse property order as n2p2 does and shuffled with the global
    schedule stream (not shuffled for a single property)."""
    sched = []
    for i in range(len(n_updates) - 1, -1, -1):
        sched += [i] * int(n_updates[i])
    sched = np.array(sched, dtype=np.int64)
    if len(n_updates) > 1:
        rng.shuffle(sched)
    return sched
