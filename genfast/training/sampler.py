"""A resumable, shardable sample order: which item each rank trains on at each position.

The order is a pure function of (seed, position): position p on a rank gives its epoch p // n, the
epoch's permutation (seeded by seed and epoch) and the item. A resumed run therefore sees exactly
the items an uninterrupted run would, with nothing to restore but the step. Under torchrun every
epoch's permutation is split across ranks as DistributedSampler does (padded by wrapping, rank r
takes every world-th entry).
"""

from __future__ import annotations

import math

import torch


class ShardedStream:
    """The infinite, resumable sample order of one rank."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.per_rank = math.ceil(n / world)
        self._perm_epoch, self._perm = None, None

    def _shard(self, epoch: int) -> list[int]:
        if self._perm_epoch != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
            total = self.per_rank * self.world
            perm = (perm * math.ceil(total / self.n))[:total]
            self._perm, self._perm_epoch = perm[self.rank::self.world], epoch
        return self._perm

    def item(self, position: int) -> tuple[int, int]:
        """(epoch, item index) of this rank's sample number `position`."""
        epoch, i = divmod(position, self.per_rank)
        return epoch, self._shard(epoch)[i]

    def batch(self, step: int, batch_size: int) -> list[int]:
        """The item indices of this rank's batch number `step`."""
        return [self.item(step * batch_size + j)[1] for j in range(batch_size)]

    def item_generator(self, epoch: int, index: int) -> torch.Generator:
        """A generator for item `index`'s own randomness in `epoch` (a random crop, augmentation)."""
        return torch.Generator().manual_seed((self.seed * 7_919 + epoch) * 1_000_003 + index)
