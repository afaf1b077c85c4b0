"""Exact solutions of both games, to judge learned agents against (not against themselves).

Tic-tac-toe: minimax over the 5 478 positions legal play reaches from the empty board (terminal ones
included). `tictactoe()` gives, for every code, the game-theoretic value for X (+1: X wins with best
play from both sides, 0: draw, -1: O wins) and which moves keep the mover's value.

Flippers: the fewest flips from every one of the 512 boards to a goal, by breadth-first search from
the six goals (a flip undoes itself, so the graph is undirected).
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass

import numpy as np

from genfast.checks import ArgumentError
from genfast.rl import boards
from genfast.rl.boards import CELLS, CODES, POW3


@dataclass(frozen=True)
class TicTacToeOracle:
    """Minimax values and optimal moves, as arrays indexed by board code (read-only).

    value_x (19683,) int8: the value for X of each reachable code (0 for unreachable codes).
    reachable (19683,) bool; optimal (19683, 9) bool: the moves that keep the mover's value.
    """

    value_x: np.ndarray
    reachable: np.ndarray
    optimal: np.ndarray

    def value(self, code: int) -> int:
        """The value of a reachable position for the player to move: +1 win, 0 draw, -1 loss."""
        code = self._check(code)
        return int(self.value_x[code]) * (1 if boards.to_move(boards.decode(code)) == boards.X else -1)

    def optimal_moves(self, code: int) -> list[int]:
        return [int(m) for m in np.flatnonzero(self.optimal[self._check(code)])]

    def decision_codes(self) -> np.ndarray:
        """The reachable positions where the game is not over (4 520): where a move is chosen."""
        return np.flatnonzero(self.reachable & (boards.outcome_table() == boards.ONGOING))

    def afterstate_values(self) -> np.ndarray:
        """(19683,) float64: each position's value for the player who made it, as 1 (win), 0.5
        (draw), 0 (loss). Greedy play on it with random ties is perfect play that picks uniformly
        among the optimal moves (the engines' opponent 'table')."""
        cells = boards.cells_table()
        mover_is_x = (cells == boards.X).sum(1) > (cells == boards.O).sum(1)
        v = np.where(mover_is_x, self.value_x, -self.value_x).astype(np.float64)
        return (v + 1.0) / 2.0

    def _check(self, code) -> int:
        code = boards.check_code(code)
        if not self.reachable[code]:
            raise ArgumentError("code", f"board {boards.board_text(boards.decode(code))} is not reached by legal play")
        return code


@functools.lru_cache(maxsize=None)
def tictactoe() -> TicTacToeOracle:
    """Negamax over every reachable position (memoised; a fraction of a second, once)."""
    outcomes = boards.outcome_table()
    value_x = np.zeros(CODES, dtype=np.int8)
    reachable = np.zeros(CODES, dtype=bool)
    optimal = np.zeros((CODES, CELLS), dtype=bool)
    memo: dict[int, int] = {}

    def solve(code: int, mark: int) -> int:
        """The value of `code` for X, X or O (`mark`) to move."""
        if code in memo:
            return memo[code]
        reachable[code] = True
        result = outcomes[code]
        if result != boards.ONGOING:
            v = {boards.X_WINS: 1, boards.O_WINS: -1, boards.DRAW: 0}[int(result)]
        else:
            sign = 1 if mark == boards.X else -1
            children = {}
            for m in range(CELLS):
                if (code // POW3[m]) % 3 == boards.EMPTY:
                    children[m] = solve(code + mark * POW3[m], 3 - mark)
            best = max(sign * c for c in children.values())
            for m, c in children.items():
                optimal[code, m] = sign * c == best
            v = sign * best
        memo[code] = value_x[code] = v
        return v

    solve(0, boards.X)
    for a in (value_x, reachable, optimal):
        a.setflags(write=False)
    return TicTacToeOracle(value_x, reachable, optimal)


@functools.lru_cache(maxsize=None)
def _flippers_distances() -> np.ndarray:
    dist = np.full(boards.BOARDS, -1, dtype=np.int64)
    queue = deque(boards.FLIPPERS_GOALS)
    for g in boards.FLIPPERS_GOALS:
        dist[g] = 0
    while queue:
        b = queue.popleft()
        for m in range(CELLS):
            n = boards.flip(b, m)
            if dist[n] < 0:
                dist[n] = dist[b] + 1
                queue.append(n)
    dist.setflags(write=False)
    return dist


def flippers_distances() -> np.ndarray:
    """(512,) int64: the fewest flips from each board to a goal (0 on the goals)."""
    return _flippers_distances()


def flippers_optimal_moves(board: int) -> list[int]:
    """The flips that bring `board` one move closer to a goal (none on a goal)."""
    board = boards.check_board(board)
    dist = flippers_distances()
    return [m for m in range(CELLS) if dist[boards.flip(board, m)] == dist[board] - 1]
