"""Tabular RL engines: the pure-Python reference twin vs the native engine, the same games.

Shapes are (runs, games per run): tic-tac-toe TD(0) self-play (alpha 0.5 -> 0.01, epsilon 0.2, the
CLI's defaults) and Flippers Q-learning (alpha 0.5, epsilon 1 -> 0.1, gamma 0.9, at most 100 flips),
each run from a fresh table. Both sides play the same games and return bit-identical tables (the
tests check it); the speed-up is the ratio of their times, games/s = runs * games / time. The
reference is plain Python (no torch ops), so there is no torch.compile side. Times are taken in
alternating rounds (time_interleaved with rewarm), so both sides see the same machine state.
"""

from __future__ import annotations

import numpy as np
import torch

from genfast import _native, ops
from genfast.bench.core import Case
from genfast.rl import boards
from genfast.rl.learners import TDValueLearner

PRIMARY_OP = "rl_tictactoe_td"
#: (runs, games per run): the reference takes about a second per case at 2 000 - 10 000 games
DEFAULT_SHAPES = [(1, 10_000), (2, 5_000), (8, 1_250), (64, 160)]
QUICK_SHAPES = [(1, 200), (4, 50)]
SHAPE_SIZES = (2,)      # --shape R,G


def tictactoe_call(runs: int, games: int, impl: str):
    values = torch.from_numpy(np.stack([TDValueLearner.initial_table()] * runs))
    index, outcomes = boards.tictactoe_index_map(), boards.outcome_table()
    seeds = list(range(runs))

    def run():
        return ops.tictactoe_td(values, index, outcomes, seeds, alpha=(0.5, 0.01), epsilon=0.2, games=games,
                                impl=impl)
    return run


def flippers_call(runs: int, games: int, impl: str):
    q = torch.zeros(runs, boards.BOARDS * boards.CELLS, dtype=torch.float64)
    index, goals = boards.flippers_index_map(), boards.goal_mask()
    seeds = list(range(runs))

    def run():
        return ops.flippers_q(q, index, goals, seeds, alpha=0.5, epsilon=(1.0, 0.1), gamma=0.9, games=games,
                              max_moves=100, impl=impl)
    return run


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    if device.type != "cpu":
        return []                          # the engines run on the CPU only
    shapes = shapes or DEFAULT_SHAPES
    native = _native.native_available(PRIMARY_OP, device)
    out = []
    for runs, games in shapes:
        for op, make in (("rl_tictactoe_td", tictactoe_call), ("rl_flippers_q", flippers_call)):
            # Flippers games are longer (up to 100 flips, about 40 at first): a quarter as many
            n = games if op == "rl_tictactoe_td" else max(1, games // 4)
            fns = {"reference": make(runs, n, "reference")}
            if native:
                fns["native"] = make(runs, n, "native")
            out.append(Case(op, (runs, n), f"{runs * n} games", fns, interleave=True))
    return out


def report(device: torch.device, shapes, results=None) -> list[str]:
    lines = []
    for r in results or []:
        runs, games = r.shape
        lines.append(f"games/s {r.op:<16} runs={runs:<4} games={games:<6} {r.impl:<10} "
                     f"{runs * games / (r.ms / 1e3):>12,.0f}")
    return lines
