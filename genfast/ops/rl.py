"""Tabular reinforcement learning engines: the whole training loop of R independent runs in one call
(native: csrc/rl/rl_cpu.cpp; reference: genfast/reference/rl.py, which is the specification).

    values, stats = ops.tictactoe_td(values, index_map, outcomes, seeds, alpha=0.2, epsilon=0.1, games=10_000)
    q, stats = ops.flippers_q(q, index_map, goals, seeds, alpha=0.5, epsilon=0.1, gamma=0.9, games=5_000)

Each row of the table is one run, with its own seed and hyperparameters; the runs are spread over
the CPU threads. The random numbers are counter-based (Philox4x64-10 keyed by the run's seed,
counted by game and ply), so native and reference return bit-identical float64 tables, whatever the
thread count, and a run split into calls (first_game = the games already played) is the same run.
The boards, index maps and outcome tables come from genfast.rl.boards; genfast.rl drives these ops.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genfast import _native
from genfast.checks import ArgumentError, check_choice, check_int, fail, is_number
from genfast.reference import rl as ref

OPPONENTS = ("self", "random", "table")
SIDES = ("x", "o", "alternate")
CODES, BOARDS, CELLS = 19683, 512, 9


def _kind(dtype: torch.dtype) -> str:
    return "bool" if dtype == torch.bool else "float" if dtype.is_floating_point else \
        "complex" if dtype.is_complex else "integer"


#: the dtype each kind of input is converted to -> the kinds of tensor accepted for it
_ACCEPTS = {torch.float64: ("float",), torch.int64: ("integer",), torch.int8: ("integer",),
            torch.bool: ("bool", "integer")}


def _as_tensor(value, name: str, dtype: torch.dtype, where: str, *, low=None, high=None) -> torch.Tensor:
    """`value` (a tensor or numpy array on the CPU) as a contiguous `dtype` tensor; integers are
    checked against [low, high] before a narrowing conversion could wrap them."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.array(value))      # a copy: the tables of genfast.rl.boards are read-only
    if not isinstance(value, torch.Tensor):
        raise fail(name, "a torch.Tensor or numpy array", type(value).__name__, where=where)
    if value.device.type != "cpu":
        raise fail(name, "a CPU tensor (the rl engines run on the CPU)", str(value.device), where=where)
    if _kind(value.dtype) not in _ACCEPTS[dtype]:
        raise fail(name, f"a {_ACCEPTS[dtype][0]} tensor ({dtype})", str(value.dtype), where=where)
    if value.numel() and (low is not None or high is not None):
        lo, hi = int(value.min()), int(value.max())
        if (low is not None and lo < low) or (high is not None and hi > high):
            raise fail(name, f"values in [{low}, {high}]", f"values in [{lo}, {hi}]", where=where)
    return value.to(dtype).contiguous()


def _table(values, name: str, where: str) -> torch.Tensor:
    t = _as_tensor(values, name, torch.float64, where)
    if t.dim() != 2 or t.shape[1] == 0:
        raise ArgumentError(name, f"expected {name} of shape (R, S) (one table per run), got shape {tuple(t.shape)}",
                            where=where)
    if not torch.isfinite(t).all():
        raise fail(name, "finite values", "NaN or infinity", where=where)
    return t


def _index_map(index_map, shape: tuple, entries: int, where: str) -> torch.Tensor:
    m = _as_tensor(index_map, "index_map", torch.int64, where)
    if tuple(m.shape) != shape:
        raise ArgumentError("index_map", f"expected index_map of shape {shape}, got shape {tuple(m.shape)}",
                            where=where)
    return _as_tensor(m, "index_map", torch.int64, where, low=0, high=entries - 1)


def _seeds(seeds, runs: int, where: str) -> torch.Tensor:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds + r for r in range(runs)]
    if isinstance(seeds, (list, tuple)):
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise fail("seeds", "integers", repr(seeds), where=where)
        if any(not 0 <= s < 2 ** 63 for s in seeds):
            raise fail("seeds", "integers in [0, 2**63)", repr(seeds), where=where)
        seeds = torch.tensor(seeds, dtype=torch.int64)
    s = _as_tensor(seeds, "seeds", torch.int64, where)
    if tuple(s.shape) != (runs,):
        raise ArgumentError("seeds", f"expected seeds to have one seed per run, shape ({runs},), got shape "
                                     f"{tuple(s.shape)}", where=where)
    if runs and int(s.min()) < 0:
        raise fail("seeds", "integers >= 0", int(s.min()), where=where)
    return s


def _per_run(value, name: str, runs: int, where: str, *, pair: bool) -> torch.Tensor:
    """A number, a (start, end) pair (with `pair`), or a tensor (R, 2) / (R,): one per run, in [0, 1]."""
    if is_number(value) or (pair and isinstance(value, (tuple, list)) and len(value) == 2
                            and all(is_number(v) for v in value)):
        row = [float(v) for v in value] if isinstance(value, (tuple, list)) else [float(value)] * (2 if pair else 1)
        value = torch.tensor([row] * runs, dtype=torch.float64).reshape(runs, 2) if pair else \
            torch.tensor(row * runs, dtype=torch.float64)
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        want = "a number, a (start, end) pair or a tensor (R, 2)" if pair else "a number or a tensor (R,)"
        raise fail(name, want, value, where=where)
    t = _as_tensor(value, name, torch.float64, where)
    shape = (runs, 2) if pair else (runs,)
    if tuple(t.shape) != shape:
        want = "a number, a (start, end) pair or a tensor of shape" if pair else "a number or a tensor of shape"
        raise ArgumentError(name, f"expected {name} to be {want} {shape}, got shape {tuple(t.shape)}", where=where)
    if t.numel() and (not torch.isfinite(t).all() or float(t.min()) < 0 or float(t.max()) > 1):
        raise fail(name, "in [0, 1]", t.tolist() if t.numel() <= 8 else "values outside it", where=where)
    return t


def _games(first_game, games, total_games, where: str) -> tuple[int, int, int]:
    check_int(first_game, "first_game", 0, where=where)
    check_int(games, "games", 0, where=where)
    total = max(1, first_game + games) if total_games is None else total_games
    check_int(total, "total_games", max(1, first_game + games), where=where)
    return first_game, games, total


def tictactoe_td(values, index_map, outcomes, seeds, *, alpha=0.1, epsilon=0.1, games: int,
                 opponent: str = "self", opponent_values=None, side: str = "x", first_game: int = 0,
                 total_games: int | None = None, impl: str = "auto"):
    """TD(0) tic-tac-toe for R runs: `games` games (numbered first_game, first_game + 1, ...) each.

    Args:
        values: (R, S) float64, each run's afterstate table (genfast.rl.TDValueLearner.initial_table).
        index_map: (19683,) board code -> table entry; outcomes: (19683,) int8 (genfast.rl.boards).
        seeds: one int per run, an int (runs take seed, seed + 1, ...) or an int64 tensor (R,).
        alpha, epsilon: per run, a number, (start, end) (linear over total_games) or (R, 2) / (R,).
        opponent: "self" (both players learn), "random", or "table": greedy on opponent_values (19683,)
            indexed by code (a trained agent's table, or genfast.rl.oracles' perfect play).
        side: the learner's player against "random" / "table": "x", "o" or "alternate" (X in even games).
        total_games: the length of the alpha / epsilon schedules (default: first_game + games).
    Returns:
        (values (R, S) float64, stats (R, 3) int64: X wins, O wins, draws of these games).
    """
    where = "genfast.tictactoe_td"
    values = _table(values, "values", where)
    runs = values.shape[0]
    index_map = _index_map(index_map, (CODES,), values.shape[1], where)
    outcomes = _as_tensor(outcomes, "outcomes", torch.int8, where, low=0, high=3)
    if tuple(outcomes.shape) != (CODES,):
        raise fail("outcomes", f"a table of shape ({CODES},) (genfast.rl.boards.outcome_table())",
                   f"shape {tuple(outcomes.shape)}", where=where)
    seeds = _seeds(seeds, runs, where)
    alpha = _per_run(alpha, "alpha", runs, where, pair=True)
    epsilon = _per_run(epsilon, "epsilon", runs, where, pair=True)
    check_choice(opponent, "opponent", OPPONENTS, where=where)
    check_choice(side, "side", SIDES, where=where)
    if opponent == "table":
        if opponent_values is None:
            raise ArgumentError("opponent_values", "opponent 'table' needs opponent_values, a (19683,) table by "
                                                   "board code", where=where)
        opponent_values = _as_tensor(opponent_values, "opponent_values", torch.float64, where)
        if tuple(opponent_values.shape) != (CODES,) or not torch.isfinite(opponent_values).all():
            raise fail("opponent_values", f"finite values of shape ({CODES},)", f"shape "
                                          f"{tuple(opponent_values.shape)}", where=where)
    else:
        opponent_values = None
    first_game, games, total_games = _games(first_game, games, total_games, where)
    args = (values, index_map, outcomes, seeds, alpha, epsilon, opponent_values, opponent, side, first_game, games,
            total_games)
    if _native.resolve("rl_tictactoe_td", impl, values.device):
        return torch.ops.genfast.rl_tictactoe_td(*args)
    return ref.rl_tictactoe_td(*args)


def flippers_q(q, index_map, goals, seeds, *, alpha=0.5, epsilon=0.1, gamma=0.9, games: int, max_moves: int = 100,
               goal_reward: float = 1.0, move_reward: float = 0.0, first_game: int = 0,
               total_games: int | None = None, impl: str = "auto"):
    """Q-learning Flippers for R runs: `games` games each, from random non-goal boards.

    Args:
        q: (R, S) float64, each run's table; index_map (512, 9) (board, move) -> entry; goals (512,) bool.
        seeds, alpha, epsilon: as in tictactoe_td; gamma: the discount, a number or (R,) in [0, 1].
        max_moves: a game is cut after this many moves. goal_reward: the reward for reaching a goal,
            move_reward: the reward of every move (e.g. -1 with gamma 1).
    Returns:
        (q (R, S) float64, stats (R, 3) int64: games solved, games cut at max_moves, moves of the solved games).
    """
    where = "genfast.flippers_q"
    q = _table(q, "q", where)
    runs = q.shape[0]
    index_map = _index_map(index_map, (BOARDS, CELLS), q.shape[1], where)
    goals = _as_tensor(goals, "goals", torch.bool, where, low=0, high=1)
    if tuple(goals.shape) != (BOARDS,):
        raise ArgumentError("goals", f"expected goals of shape ({BOARDS},), got shape {tuple(goals.shape)}",
                            where=where)
    if bool(goals.all()):
        raise fail("goals", "at least one board that is not a goal (a start board)", "every board a goal", where=where)
    seeds = _seeds(seeds, runs, where)
    alpha = _per_run(alpha, "alpha", runs, where, pair=True)
    epsilon = _per_run(epsilon, "epsilon", runs, where, pair=True)
    gamma = _per_run(gamma, "gamma", runs, where, pair=False)
    check_int(max_moves, "max_moves", 1, where=where)
    for name, v in (("goal_reward", goal_reward), ("move_reward", move_reward)):
        if not is_number(v) or not math.isfinite(v):
            raise fail(name, "a finite number", v, where=where)
    first_game, games, total_games = _games(first_game, games, total_games, where)
    args = (q, index_map, goals, seeds, alpha, epsilon, gamma, first_game, games, total_games, max_moves,
            float(goal_reward), float(move_reward))
    if _native.resolve("rl_flippers_q", impl, q.device):
        return torch.ops.genfast.rl_flippers_q(*args)
    return ref.rl_flippers_q(*args)


def _register() -> None:
    @torch.library.register_fake("genfast::rl_tictactoe_td")
    def _(values, index_map, outcomes, seeds, alpha, epsilon, opponent_values, opponent, side, first_game, games,
          total_games):
        return values.new_empty(values.shape), values.new_empty((values.shape[0], 3), dtype=torch.int64)

    @torch.library.register_fake("genfast::rl_flippers_q")
    def _(q, index_map, goals, seeds, alpha, epsilon, gamma, first_game, games, total_games, max_moves, goal_reward,
          move_reward):
        return q.new_empty(q.shape), q.new_empty((q.shape[0], 3), dtype=torch.int64)


#: public function -> the registered native ops it runs
NATIVE = {"tictactoe_td": ("rl_tictactoe_td",), "flippers_q": ("rl_flippers_q",)}

if _native.load_error() is None:
    _register()
    _native.precompute(NATIVE)
