"""Playing in the terminal: a person against the tic-tac-toe agent, and the Flippers agent's solutions.

    play_tictactoe(agent, first="human")     # the board, moves by number 1-9, until the person stops
    play_flippers(agent, board="010010011")  # the agent's flips one by one, with its Q-value per flip

Both read lines with `input_fn` and write with `print_fn` (input and print by default, so tests can
type for a person). Anything typed is handled: a move that is not a free cell, text that is not a
number, an empty line are answered and asked again; "q" or end of input (Ctrl-D) stops.
The tic-tac-toe game runs in genfast's PettingZoo environment, and the agent gets the observation
any PettingZoo agent gets.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from genfast.checks import ArgumentError, check_choice, check_int
from genfast.rl import boards, oracles
from genfast.rl.envs import tictactoe_env

QUIT = ("q", "quit", "exit")


class _Stop(Exception):
    """The person asked to stop (q, or end of input)."""


def _ask(prompt: str, input_fn) -> str:
    try:
        text = input_fn(prompt)
    except EOFError:
        raise _Stop from None
    if text is None:
        raise _Stop
    text = str(text).strip()
    if text.lower() in QUIT:
        raise _Stop
    return text


def use_color(stream=None) -> bool:
    """ANSI colours on a terminal, unless NO_COLOR is set."""
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


# ------------------------------------------------------------------------------------ tic-tac-toe

def _value_board(values: np.ndarray, cells) -> str:
    """The agent's estimated winning chance after each free cell, as a board."""
    def show(a):
        return f"{100 * values[a]:3.0f}%" if cells[a] == boards.EMPTY else f"  {boards.MARKS[cells[a]]} "
    rows = [" " + " | ".join(show(3 * r + c) for c in range(3)) for r in range(3)]
    return "\n" + "\n------+------+------\n".join(rows)


def play_tictactoe(agent, *, first: str = "human", show_values: bool = False, input_fn=input, print_fn=print,
                   max_games: int | None = None) -> dict:
    """Games of a person against `agent` (a TDValueLearner, greedy) until the person stops; the
    person moves first (X) with first="human". Returns the tally {"human", "agent", "draw"}."""
    check_choice(first, "first", ("human", "agent"))
    if max_games is not None:
        check_int(max_games, "max_games", 1)
    tally = {"human": 0, "agent": 0, "draw": 0}
    env = tictactoe_env()
    human = env.possible_agents[0] if first == "human" else env.possible_agents[1]
    mark = "X" if first == "human" else "O"
    print_fn(f"You are {mark} ({'you move first' if first == 'human' else 'the agent moves first'}). "
             f"Type the number of a free cell; q quits.")
    try:
        while max_games is None or sum(tally.values()) < max_games:
            env.reset()
            for player in env.agent_iter():
                obs, reward, terminated, truncated, _ = env.last()
                if terminated or truncated:
                    env.step(None)
                    continue
                cells = env.unwrapped.cells
                if player == human:
                    print_fn("\n" + boards.render(cells, numbers=True))
                    env.step(_human_move(cells, input_fn, print_fn))
                else:
                    move = agent.act(obs)
                    if show_values:
                        print_fn(f"the agent's value of each move (its chance to win, a draw counting "
                                 f"{agent.draw_value:g}):"
                                 + _value_board(agent.move_values(obs), cells))
                    print_fn(f"agent plays {move + 1}")
                    env.step(move)
            cells = env.unwrapped.cells
            result = boards.outcome(cells)
            print_fn("\n" + boards.render(cells))
            if result == boards.DRAW:
                winner = "draw"
            else:
                winner = "human" if (result == boards.X_WINS) == (human == env.possible_agents[0]) else "agent"
            tally[winner] += 1
            print_fn({"draw": "A draw.", "human": "You win!", "agent": "The agent wins."}[winner]
                     + f"  (you {tally['human']}, agent {tally['agent']}, draws {tally['draw']})")
            if max_games is not None and sum(tally.values()) >= max_games:
                break
            again = _ask("play again? [Y/n] ", input_fn)
            if again.lower() in ("n", "no"):
                break
    except _Stop:
        print_fn("")
    print_fn(f"final score: you {tally['human']}, agent {tally['agent']}, draws {tally['draw']}")
    return tally


def _human_move(cells, input_fn, print_fn) -> int:
    free = [a + 1 for a in range(boards.CELLS) if cells[a] == boards.EMPTY]
    while True:
        text = _ask(f"your move ({', '.join(map(str, free))}): ", input_fn)
        if not text:
            print_fn("type the number of a free cell (q quits)")
        elif not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 9:
            print_fn(f"{text!r} is not a cell: type a number 1-9 (q quits)")
        elif cells[int(text) - 1] != boards.EMPTY:
            print_fn(f"cell {text} is taken by {boards.MARKS[cells[int(text) - 1]]}; free cells: "
                     f"{', '.join(map(str, free))}")
        else:
            return int(text) - 1


# ---------------------------------------------------------------------------------------- flippers

def _blocks(stream=None) -> tuple[str, str]:
    encoding = (getattr(stream or sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return ("\u2588", "\u2591") if encoding in ("utf8", "utf16", "utf32") else ("#", ".")


def q_bars(values: np.ndarray, chosen: int, *, width: int = 24, color: bool = False) -> list[str]:
    """One line per tile: a bar for its Q-value, from a sliver for the smallest of the nine to full
    width for the largest; the agent's flip is marked."""
    lo, hi = float(values.min()), float(values.max())
    lo -= 0.25 * (hi - lo)
    full, empty = _blocks()
    lines = []
    for m, v in enumerate(values):
        n = int(round(width * (v - lo) / (hi - lo))) if hi > lo else width
        bar = full * n + empty * (width - n)
        bar = _paint(bar, "32" if m == chosen else "34", color)
        mark = " <- flip" if m == chosen else ""
        lines.append(f"tile {m + 1} (row {m // 3 + 1}, col {m % 3 + 1}) {bar} {v:7.4f}{mark}")
    return lines


def solution_text(agent, board: int, *, max_moves: int = 20, color: bool = False) -> str:
    """The agent's greedy solution from `board`, flip by flip, with its Q-values per flip."""
    board = boards.check_board(board)
    fewest = int(oracles.flippers_distances()[board])
    out = [f"start (fewest flips to a goal: {fewest}):", boards.render_flippers(board)]
    if boards.is_goal(board):
        return "\n".join(out + ["this board is already a goal"])
    path = agent.solve(board, max_moves=max_moves)
    for step, (b, move, values) in enumerate(path, 1):
        out.append(f"\nflip {step}: the agent's Q-values on this board (bars from its smallest to its largest)")
        out += q_bars(values, move, color=color)
        out.append(boards.render_flippers(boards.flip(b, move)))
    end = boards.flip(path[-1][0], path[-1][1])
    if boards.is_goal(end):
        verdict = "the fewest possible" if len(path) == fewest else f"{len(path) - fewest} more than the fewest"
        out.append(f"\ngoal in {len(path)} flips ({verdict})")
    else:
        out.append(f"\nno goal after {len(path)} flips: the greedy policy goes round in circles from this board")
    return "\n".join(out)


def play_flippers(agent, board=None, *, input_fn=input, print_fn=print, color: bool = False, max_moves: int = 20,
                  rng=None) -> int:
    """Show the agent's solution from `board` (a number, nine 0/1 tiles, or None to ask a person for
    boards until they stop; an empty answer takes a random board). Returns how many were shown."""
    check_int(max_moves, "max_moves", 1)
    if board is not None:
        start = boards.read_flippers(board, "board")
        print_fn(solution_text(agent, start, max_moves=max_moves, color=color))
        return 1
    rng = rng or np.random.default_rng()
    starts = np.flatnonzero(~boards.goal_mask())
    shown = 0
    try:
        while True:
            text = _ask("\na board (nine tiles row by row, 1 = dot, e.g. 010010011; or 0-511; Enter: random; "
                        "q quits): ", input_fn)
            if not text:
                start = int(rng.choice(starts))
            else:
                try:
                    start = boards.parse_flippers(text)
                except ArgumentError as e:
                    print_fn(e.detail)
                    continue
            print_fn(solution_text(agent, start, max_moves=max_moves, color=color))
            shown += 1
    except _Stop:
        print_fn("")
    return shown
