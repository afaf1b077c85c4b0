"""How a trained agent is judged: against the exact oracles, never against itself.

    report = evaluate_tictactoe(agent, games=1000)   # win/draw/loss vs random and perfect play, each side,
                                                     # and the share of positions with a minimax-optimal move
    report = evaluate_flippers(agent)                # every board: solved in the fewest flips? excess moves

The agent plays its greedy policy (`agent.greedy_policy()`, what `act()` returns). The random player
picks uniformly among the legal moves; the perfect player uniformly among the minimax-optimal ones,
so over many games it tries every line that perfect play allows.
"""

from __future__ import annotations

import numpy as np

from genfast.checks import check_choice, check_int
from genfast.rl import boards, oracles
from genfast.rl.boards import CELLS, EMPTY, O, POW3, X

OPPONENTS = ("random", "perfect")
SIDES = ("x", "o")


def play_tictactoe(policy: np.ndarray, opponent: str, side: str, games: int, rng) -> dict:
    """`games` games of the greedy `policy` ((19683,) move per code) against `opponent` ("random" or
    "perfect"), the agent playing `side` ("x" moves first). Returns {"win", "draw", "loss"} shares."""
    check_choice(opponent, "opponent", OPPONENTS)
    check_choice(side, "side", SIDES)
    check_int(games, "games", 1)
    oracle = oracles.tictactoe()
    outcomes = boards.outcome_table()
    agent = X if side == "x" else O
    counts = {"win": 0, "draw": 0, "loss": 0}
    for _ in range(games):
        code, mark = 0, X
        while outcomes[code] == boards.ONGOING:
            if mark == agent:
                move = int(policy[code])
            elif opponent == "perfect":
                move = int(rng.choice(np.flatnonzero(oracle.optimal[code])))
            else:
                move = int(rng.choice([m for m in range(CELLS) if (code // POW3[m]) % 3 == EMPTY]))
            code += mark * POW3[move]
            mark = O if mark == X else X
        result = outcomes[code]
        if result == boards.DRAW:
            counts["draw"] += 1
        else:
            counts["win" if (result == boards.X_WINS) == (agent == X) else "loss"] += 1
    return {k: v / games for k, v in counts.items()}


def optimal_move_share(policy: np.ndarray, side: str | None = None) -> float:
    """The share of reachable positions (where a move is chosen; of one side's turns with `side`)
    whose greedy move is minimax-optimal."""
    oracle = oracles.tictactoe()
    codes = oracle.decision_codes()
    if side is not None:
        check_choice(side, "side", SIDES)
        cells = boards.cells_table()[codes]
        x_to_move = (cells == X).sum(1) == (cells == O).sum(1)
        codes = codes[x_to_move if side == "x" else ~x_to_move]
    moves = policy[codes].astype(np.int64)
    return float(oracle.optimal[codes, moves].mean())


def evaluate_tictactoe(agent, games: int = 1000, seed: int = 0) -> dict:
    """Win/draw/loss shares over `games` games against each opponent from each side ("random_as_x_win",
    "perfect_as_o_loss", ...), and the optimal-move share (all positions, and X's and O's turns apart)."""
    policy = agent.greedy_policy()
    rng = np.random.default_rng(seed)
    report = {}
    for opp in OPPONENTS:
        for side in SIDES:
            shares = play_tictactoe(policy, opp, side, games, rng)
            report.update({f"{opp}_as_{side}_{result}": share for result, share in shares.items()})
    report["optimal_move_share"] = optimal_move_share(policy)
    report["optimal_move_share_x"] = optimal_move_share(policy, "x")
    report["optimal_move_share_o"] = optimal_move_share(policy, "o")
    report["eval_games"] = games
    return report


def tictactoe_targets(report: dict) -> dict:
    """The issue's targets: no loss to perfect play from either side, >= 90 % wins against random as X."""
    return {"never_loses_to_perfect_play": report["perfect_as_x_loss"] == 0 and report["perfect_as_o_loss"] == 0,
            "wins_90_percent_vs_random_as_x": report["random_as_x_win"] >= 0.9}


def flippers_paths(policy: np.ndarray, max_moves: int = 20) -> np.ndarray:
    """(512,) the number of greedy flips from each board to a goal (-1: not reached in max_moves)."""
    check_int(max_moves, "max_moves", 1)
    lengths = np.full(boards.BOARDS, -1, dtype=np.int64)
    for start in range(boards.BOARDS):
        board, n = start, 0
        while not boards.is_goal(board) and n < max_moves:
            board, n = boards.flip(board, int(policy[board])), n + 1
        if boards.is_goal(board):
            lengths[start] = n
    return lengths


def evaluate_flippers(agent, max_moves: int = 20) -> dict:
    """Over the 506 boards that are not goals (every one is solvable): the share the greedy policy
    solves, the share it solves in the fewest flips (oracles.flippers_distances), and the mean and
    largest excess flips (an unsolved board counts max_moves - its distance)."""
    lengths = flippers_paths(agent.greedy_policy(), max_moves)
    dist = oracles.flippers_distances()
    starts = dist > 0
    solved = lengths[starts] >= 0
    excess = np.where(solved, lengths[starts] - dist[starts], max_moves - dist[starts])
    return {"boards": int(starts.sum()), "solved_share": float(solved.mean()),
            "optimal_share": float((solved & (excess == 0)).mean()), "mean_excess_moves": float(excess.mean()),
            "max_excess_moves": int(excess.max()), "unsolved": int((~solved).sum())}


def flippers_targets(report: dict) -> dict:
    """The issue's target: every solvable board solved in the minimum number of moves."""
    return {"solves_every_board_in_fewest_moves": report["optimal_share"] == 1.0}
