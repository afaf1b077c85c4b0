"""The learned agents: plain float64 tables with the ecosystem's observations in and action indices out.

    agent = TDValueLearner()                   # tic-tac-toe: V(afterstate), every entry 0.5 to start
    move = agent.act(obs)                      # obs: PettingZoo tictactoe_v3's {"observation", "action_mask"}
    agent = QLearner()                         # Flippers: Q(board, move), every entry 0 to start
    move = agent.act(obs)                      # obs: the Gymnasium observation (9,) of 0/1 tiles
    agent.save("agent.safetensors"); agent = genfast.rl.load_agent("agent.safetensors")

TDValueLearner.values[index_map[code]] is the estimated probability that the player who just made
board `code` wins (Sutton & Barto's V of the afterstate). One table serves both sides: X's
afterstates and O's never share a board. Boards that end the game hold their fixed value: 1 for the
winner, `draw_value` for a draw. QLearner.q[index_map[board, move]] is the estimated discounted
reward to come after flipping `move` on `board`. Greedy moves take the first of equal values (the
training engines break ties at random); `act(..., epsilon=, rng=)` explores.
Files are safetensors with the hyperparameters in the header (genfast.training.weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genfast import io
from genfast.checks import ArgumentError, check_number
from genfast.rl import boards
from genfast.rl.boards import CELLS, CODES, EMPTY, O, POW3, X, read_flippers, read_observation
from genfast.training import weights
from genfast.training.checkpoint import CheckpointError

TICTACTOE_KIND, FLIPPERS_KIND = "rl-tictactoe", "rl-flippers"


def _explore(legal: np.ndarray, epsilon: float, rng) -> int | None:
    """A random legal move with probability epsilon (None: move greedily)."""
    check_number(epsilon, "epsilon", high=1.0)
    if epsilon > 0:
        if rng is None:
            raise ArgumentError("rng", "epsilon > 0 needs rng, a numpy Generator (np.random.default_rng(seed))")
        if rng.random() < epsilon:
            return int(rng.choice(legal))
    return None


# ------------------------------------------------------------------------------------ tic-tac-toe

class TDValueLearner:
    """Tic-tac-toe afterstate values learned by TD(0) (genfast.rl.train.train_tictactoe)."""

    kind = TICTACTOE_KIND

    def __init__(self, values=None, *, symmetry: bool = False, draw_value: float = 0.5, config: dict | None = None):
        self.symmetry = bool(symmetry)
        self.draw_value = check_number(draw_value, "draw_value", high=1.0)
        self.index_map = boards.tictactoe_index_map(self.symmetry)
        if values is None:
            values = self.initial_table(self.draw_value, self.symmetry)
        values = np.array(values, dtype=np.float64)
        if values.shape != (CODES,):
            raise ArgumentError("values", f"expected a tic-tac-toe table of {CODES} values (one per board code), "
                                          f"got shape {values.shape}")
        self.values = values
        self.config = dict(config or {})

    @staticmethod
    def initial_table(draw_value: float = 0.5, symmetry: bool = False) -> np.ndarray:
        """Every position 0.5; a won board 1 (for the player who made it), a drawn board draw_value."""
        out = boards.outcome_table()
        index = boards.tictactoe_index_map(symmetry)
        values = np.full(CODES, 0.5)
        values[index[np.isin(out, (boards.X_WINS, boards.O_WINS))]] = 1.0
        values[index[out == boards.DRAW]] = draw_value
        return values

    # -- playing
    def move_values(self, observation) -> np.ndarray:
        """(9,) the value of each legal move's afterstate for the player to move (NaN: illegal)."""
        cells, me, turn = read_observation(observation)
        if not turn:
            raise ArgumentError("observation", f"it is not the observer's turn on the board "
                                               f"{boards.board_text(cells)}" + self._over(cells))
        return self._move_values(boards.encode(cells), me)

    def act(self, observation, *, epsilon: float = 0.0, rng=None) -> int:
        """The greedy move (the first of equal values), or with probability epsilon a random legal one."""
        values = self.move_values(observation)
        legal = np.flatnonzero(~np.isnan(values))
        explored = _explore(legal, epsilon, rng)
        return explored if explored is not None else int(legal[np.argmax(values[legal])])

    def value(self, observation) -> float:
        """The estimated probability that the observer wins: the best afterstate's value on its turn,
        the board's own value when it has just moved, 1 / draw_value / 0 when the game is over."""
        cells, me, turn = read_observation(observation)
        result = boards.outcome(cells)
        if result != boards.ONGOING:
            return self.draw_value if result == boards.DRAW else float(result == (boards.X_WINS if me == X else
                                                                                   boards.O_WINS))
        if turn:
            return float(np.nanmax(self._move_values(boards.encode(cells), me)))
        return float(self.values[self.index_map[boards.encode(cells)]])

    def greedy_policy(self) -> np.ndarray:
        """(19683,) int8: the greedy move of every position where a move is chosen (-1 elsewhere); what
        act() returns, for all boards at once (the evaluations use it)."""
        cells = boards.cells_table()
        mark = np.where((cells == X).sum(1) == (cells == O).sum(1), X, O)
        codes = np.arange(CODES)[:, None] + mark[:, None] * np.array(POW3)[None, :]
        values = np.where(cells == EMPTY, self.values[self.index_map[np.minimum(codes, CODES - 1)]], -np.inf)
        policy = np.argmax(values, axis=1).astype(np.int8)
        policy[(boards.outcome_table() != boards.ONGOING) | ~(cells == EMPTY).any(1)] = -1
        return policy

    def _move_values(self, code: int, mark: int) -> np.ndarray:
        out = np.full(CELLS, np.nan)
        for m in range(CELLS):
            if (code // POW3[m]) % 3 == EMPTY:
                out[m] = self.values[self.index_map[code + mark * POW3[m]]]
        return out

    @staticmethod
    def _over(cells) -> str:
        return " (the game is over)" if boards.outcome(cells) != boards.ONGOING else ""

    def table_by_code(self) -> np.ndarray:
        """(19683,) the value of every board code (the engines' opponent 'table')."""
        return self.values[self.index_map]

    # -- state
    def header(self) -> dict:
        return {"symmetry": self.symmetry, "draw_value": self.draw_value, **self.config}

    def state_dict(self) -> dict:
        return {"values": torch.from_numpy(self.values.copy())}

    def load_state_dict(self, state: dict) -> None:
        values = state["values"].numpy()
        if values.shape != self.values.shape:
            raise ArgumentError("values", f"expected {self.values.shape}, got {values.shape}")
        self.values = values.astype(np.float64).copy()

    def save(self, path) -> Path:
        return weights.save(path, self.state_dict(), kind=self.kind, config=self.header())

    @classmethod
    def from_file(cls, state: dict, config: dict, path) -> "TDValueLearner":
        values = state.get("values")
        if values is None or tuple(values.shape) != (CODES,):
            raise CheckpointError("agent", f"{str(path)!r} holds no tic-tac-toe table of {CODES} values (found "
                                           f"{ {k: tuple(v.shape) for k, v in state.items()} })")
        rest = {k: v for k, v in config.items() if k not in ("symmetry", "draw_value")}
        return cls(values.numpy(), symmetry=bool(config.get("symmetry", False)),
                   draw_value=float(config.get("draw_value", 0.5)), config=rest)


# ---------------------------------------------------------------------------------------- flippers

class QLearner:
    """Flippers Q-values learned by Q-learning (genfast.rl.train.train_flippers)."""

    kind = FLIPPERS_KIND

    def __init__(self, q=None, *, symmetry: bool = False, config: dict | None = None):
        self.symmetry = bool(symmetry)
        self.index_map = boards.flippers_index_map(self.symmetry)
        q = np.zeros(boards.BOARDS * CELLS) if q is None else np.array(q, dtype=np.float64).reshape(-1)
        if q.shape != (boards.BOARDS * CELLS,):
            raise ArgumentError("q", f"expected a Flippers table of {boards.BOARDS} x {CELLS} values, got "
                                     f"{q.size} values")
        self.q = q
        self.config = dict(config or {})

    def q_values(self, observation) -> np.ndarray:
        """(9,) Q(board, move) for the nine flips."""
        return self.q[self.index_map[read_flippers(observation)]]

    def value(self, observation) -> float:
        return float(self.q_values(observation).max())

    def act(self, observation, *, epsilon: float = 0.0, rng=None) -> int:
        values = self.q_values(observation)
        explored = _explore(np.arange(CELLS), epsilon, rng)
        return explored if explored is not None else int(np.argmax(values))

    def greedy_policy(self) -> np.ndarray:
        """(512,) int8: the greedy flip of every board."""
        return np.argmax(self.q[self.index_map], axis=1).astype(np.int8)

    def solve(self, board, max_moves: int = 20) -> list[tuple[int, int, np.ndarray]]:
        """The greedy path from `board`: [(board, move, Q-values of the board)] until a goal or
        `max_moves` moves."""
        board = read_flippers(board, "board")
        path = []
        while not boards.is_goal(board) and len(path) < max_moves:
            values = self.q[self.index_map[board]]
            move = int(np.argmax(values))
            path.append((board, move, values))
            board = boards.flip(board, move)
        return path

    def header(self) -> dict:
        return {"symmetry": self.symmetry, **self.config}

    def state_dict(self) -> dict:
        return {"q": torch.from_numpy(self.q.reshape(boards.BOARDS, CELLS).copy())}

    def load_state_dict(self, state: dict) -> None:
        self.q = state["q"].numpy().astype(np.float64).reshape(-1).copy()

    def save(self, path) -> Path:
        return weights.save(path, self.state_dict(), kind=self.kind, config=self.header())

    @classmethod
    def from_file(cls, state: dict, config: dict, path) -> "QLearner":
        q = state.get("q")
        if q is None or tuple(q.shape) != (boards.BOARDS, CELLS):
            raise CheckpointError("agent", f"{str(path)!r} holds no Flippers table of {boards.BOARDS} x {CELLS} "
                                           f"values (found { {k: tuple(v.shape) for k, v in state.items()} })")
        rest = {k: v for k, v in config.items() if k != "symmetry"}
        return cls(q.numpy(), symmetry=bool(config.get("symmetry", False)), config=rest)


LEARNERS = {TICTACTOE_KIND: TDValueLearner, FLIPPERS_KIND: QLearner}


def load_agent(path, *, kind: str | None = None, name: str = "agent"):
    """The learner saved at `path` (a TDValueLearner or a QLearner, by the file's header); with
    `kind` ("rl-tictactoe" / "rl-flippers"), a file of the other game is refused."""
    try:
        _, header = io.load_safetensors(path, name=name)
    except ArgumentError as e:
        raise CheckpointError(name, f"{str(path)!r} is not a genfast rl agent: {e.detail}") from None
    found = header.get("genfast_kind")
    if found not in LEARNERS:
        what = f"genfast {found} weights" if found else "a safetensors file without a genfast header"
        raise CheckpointError(name, f"{str(path)!r} is not a genfast rl agent ({what})")
    if kind is not None and found != kind:
        game = {TICTACTOE_KIND: "tic-tac-toe", FLIPPERS_KIND: "Flippers"}
        raise CheckpointError(name, f"{str(path)!r} is a {game[found]} agent, not a {game.get(kind, kind)} agent")
    state, meta = weights.load(path, kind=found, name=name)
    return LEARNERS[found].from_file(state, meta["config"], path)
