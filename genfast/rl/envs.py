"""The two games with the ecosystem's interfaces, so that genfast agents (and anyone else's) plug in.

    env = tictactoe_env()                  # PettingZoo AEC, like pettingzoo.classic.tictactoe_v3
    env.reset(seed=0)
    for agent in env.agent_iter():
        obs, reward, terminated, truncated, info = env.last()
        env.step(None if terminated or truncated else my_agent.act(obs))

    env = gymnasium.make("genfast/Flippers-v0")    # or FlippersEnv(); Discrete(9) flips, MultiBinary(9) tiles
    obs, info = env.reset(seed=0)

Tic-tac-toe: agents "player_1" (X, moves first) and "player_2" (O); the observation is tictactoe_v3's:
"observation" (3, 3, 2) int8, plane 0 the observing player's marks and plane 1 the other's, cell a at
[a // 3, a % 3], and "action_mask" (9,) int8, all zeros when it is not that player's turn (and, unlike
tictactoe_v3, which leaves the empty cells in it, once the game is over). Rewards
+1 / -1 for a win / loss, 0 for a draw. Unlike tictactoe_v3 (which ends the game with -1 for the
offender), an illegal move raises an error that names the move and the board. render() is text.

Flippers: the observation is the nine tiles (1: dot) row by row; reset(options={"board": b}) starts
from board b (0-511, nine 0/1, or text like "010010011"), else from a random board that is not a goal. A move flips one
tile; reaching a goal gives goal_reward and ends the game (terminated), every move gives move_reward,
and after max_moves moves the game is cut (truncated). info holds "board" and "distance", the fewest
flips left (genfast.rl.oracles).
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv
from pettingzoo.utils import AgentSelector, wrappers

from genfast.checks import ArgumentError, check_choice, check_int, check_number
from genfast.rl import boards, oracles
from genfast.rl.boards import CELLS, EMPTY, O, X


def _render(mode: str | None, text: str):
    """render() in text: "ansi" returns the board, "human" prints it."""
    if mode is None:
        gymnasium.logger.warn("render() called without a render_mode (use 'ansi' or 'human')")
        return None
    if mode == "human":
        print(text + "\n")
        return None
    return text


class TicTacToeEnv(AECEnv):
    """Two-player tic-tac-toe, PettingZoo AEC (use tictactoe_env() for the order-checking wrapper)."""

    metadata = {"render_modes": ["human", "ansi"], "name": "genfast_tictactoe_v0", "is_parallelizable": False,
                "render_fps": 1}

    def __init__(self, render_mode: str | None = None):
        super().__init__()
        if render_mode is not None:
            check_choice(render_mode, "render_mode", self.metadata["render_modes"])
        self.render_mode = render_mode
        self.possible_agents = ["player_1", "player_2"]
        self.agents = self.possible_agents[:]
        space = spaces.Dict({"observation": spaces.Box(0, 1, (3, 3, 2), dtype=np.int8),
                             "action_mask": spaces.Box(0, 1, (CELLS,), dtype=np.int8)})
        self.observation_spaces = {a: space for a in self.possible_agents}
        self.action_spaces = {a: spaces.Discrete(CELLS) for a in self.possible_agents}
        self.cells = [EMPTY] * CELLS
        self._selector = AgentSelector(self.agents)
        self.agent_selection = self._selector.reset()
        self.rewards = dict.fromkeys(self.agents, 0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {a: {} for a in self.agents}

    def observation_space(self, agent):
        return self.observation_spaces[agent]

    def action_space(self, agent):
        return self.action_spaces[agent]

    def mark_of(self, agent: str) -> int:
        return X if agent == self.possible_agents[0] else O

    def observe(self, agent):
        return boards.to_observation(self.cells, self.mark_of(agent), turn=agent == self.agent_selection
                           and boards.outcome(self.cells) == boards.ONGOING)

    def reset(self, seed=None, options=None):
        self.cells = [EMPTY] * CELLS
        self.agents = self.possible_agents[:]
        self.rewards = dict.fromkeys(self.agents, 0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {a: {} for a in self.agents}
        self._selector.reinit(self.agents)
        self.agent_selection = self._selector.reset()

    def step(self, action):
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            if action is not None:
                boards.check_move(self.cells, action)       # raises: the game is over
            return self._was_dead_step(action)
        move = boards.check_move(self.cells, action)
        self.cells[move] = self.mark_of(agent)
        result = boards.outcome(self.cells)
        if result != boards.ONGOING:
            if result != boards.DRAW:
                winner = self.possible_agents[0] if result == boards.X_WINS else self.possible_agents[1]
                for a in self.agents:
                    self.rewards[a] = 1 if a == winner else -1
            self.terminations = dict.fromkeys(self.agents, True)
            self._accumulate_rewards()
        self.agent_selection = self._selector.next()
        if self.render_mode == "human":
            self.render()

    def render(self):
        return _render(self.render_mode, boards.render(self.cells))

    def close(self):
        pass


def tictactoe_env(render_mode: str | None = None):
    """TicTacToeEnv in PettingZoo's OrderEnforcingWrapper (step before reset, etc. are errors)."""
    return wrappers.OrderEnforcingWrapper(TicTacToeEnv(render_mode=render_mode))


class FlippersEnv(gymnasium.Env):
    """Solitaire Flippers, Gymnasium: flip tiles until exactly one row or column shows dots."""

    metadata = {"render_modes": ["human", "ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, max_moves: int = 100, goal_reward: float = 1.0,
                 move_reward: float = 0.0):
        if render_mode is not None:
            check_choice(render_mode, "render_mode", self.metadata["render_modes"])
        self.render_mode = render_mode
        self.max_moves = check_int(max_moves, "max_moves", 1)
        self.goal_reward = check_number(goal_reward, "goal_reward", low=None)
        self.move_reward = check_number(move_reward, "move_reward", low=None)
        self.observation_space = spaces.MultiBinary(CELLS)
        self.action_space = spaces.Discrete(CELLS)
        self.board, self.moves, self.done = 0, 0, True
        self._starts = np.flatnonzero(~boards.goal_mask())

    def _info(self) -> dict:
        return {"board": self.board, "distance": int(oracles.flippers_distances()[self.board]), "moves": self.moves}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        start = (options or {}).get("board")
        if start is None:
            self.board = int(self.np_random.choice(self._starts))
        else:
            self.board = boards.read_flippers(start, "board")
        self.moves, self.done = 0, boards.is_goal(self.board)
        if self.render_mode == "human":
            self.render()
        return boards.bits(self.board), self._info()

    def step(self, action):
        if not (isinstance(action, (int, np.integer)) and not isinstance(action, bool)) or not 0 <= action < CELLS:
            raise ArgumentError("move", f"expected a tile in [0, 8], got {action!r} on the board "
                                        f"{boards.render_flippers(self.board).replace(chr(10), '|')}")
        if self.done:
            raise ArgumentError("move", f"move {int(action)}: the game is over on the board "
                                        f"{boards.render_flippers(self.board).replace(chr(10), '|')}; call reset()")
        self.board = boards.flip(self.board, int(action))
        self.moves += 1
        terminated = boards.is_goal(self.board)
        truncated = not terminated and self.moves >= self.max_moves
        self.done = terminated or truncated
        reward = self.move_reward + (self.goal_reward if terminated else 0.0)
        if self.render_mode == "human":
            self.render()
        return boards.bits(self.board), reward, terminated, truncated, self._info()

    def render(self):
        return _render(self.render_mode, boards.render_flippers(self.board))


if "genfast/Flippers-v0" not in gymnasium.registry:
    gymnasium.register("genfast/Flippers-v0", entry_point="genfast.rl.envs:FlippersEnv")
