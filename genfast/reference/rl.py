"""Reference tabular learners: tic-tac-toe by TD(0) (Sutton & Barto, ch. 1) and Flippers by
Q-learning, the whole training loop in plain Python. The twin of csrc/rl/rl_cpu.cpp: both draw the
same counter-based random numbers and do the same float64 arithmetic in the same order, so they
return bit-identical tables.

Random numbers. Philox4x64-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11;
numpy.random.Philox is the same function): a keyed bijection of a 256-bit counter. The key is
(seed, game stream), the counter (game index, ply, 0, 0); one block gives four 64-bit words per
move: r[0] for the explore test, r[1] for a random move, r[2] to break ties between equal values
(and, at ply 0 of a Flippers game, r[0] picks the start board). A game's numbers depend on nothing
but (seed, game index), so a run split into calls (`first_game`) is the same run.

Boards are genfast.rl.boards codes; the tables come in already initialised (genfast.rl.learners).
"""

from __future__ import annotations

import torch

MASK64 = (1 << 64) - 1
PHILOX_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)     # round multipliers
PHILOX_W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)     # key schedule (golden ratio, sqrt(3) - 1)
TICTACTOE_STREAM, FLIPPERS_STREAM = 1, 2                 # the key's second word: one stream per game
POW3 = (1, 3, 9, 27, 81, 243, 729, 2187, 6561)
DRAW = 3                                                 # genfast.rl.boards.DRAW


def philox4x64(counter, key):
    """Philox4x64-10: four 64-bit words from a four-word counter and a two-word key."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + PHILOX_W[0]) & MASK64, (k1 + PHILOX_W[1]) & MASK64
        p0, p1 = PHILOX_M[0] * c0, PHILOX_M[1] * c2
        c0, c1, c2, c3 = (p1 >> 64) ^ c1 ^ k0, p1 & MASK64, (p0 >> 64) ^ c3 ^ k1, p0 & MASK64
    return c0, c1, c2, c3


def draws(seed: int, stream: int, game: int, ply: int):
    return philox4x64((game, ply, 0, 0), (seed & MASK64, stream))


def uniform(r: int) -> float:
    """A float64 in [0, 1) from the top 53 bits."""
    return (r >> 11) * (1.0 / 9007199254740992.0)


def below(r: int, n: int) -> int:
    """An integer in [0, n) from the top 32 bits (bias below n / 2**32)."""
    return ((r >> 32) * n) >> 32


def greedy(values, options, r: int):
    """The option of the largest value; a tie is broken by r among the tied options, in order."""
    best = max(values)
    tied = [o for o, v in zip(options, values) if v == best]
    return tied[below(r, len(tied))]


def schedule(start: float, end: float, game: int, total: int) -> float:
    """Linear from `start` at game 0 to `end` at game `total`."""
    return start + (end - start) * (game / total)


# ------------------------------------------------------------------------------------ tic-tac-toe

def tictactoe_run(V, index, outcomes, seed, alpha, epsilon, opponent, opponent_values, side, first_game, games,
                  total_games):
    """One run of TD(0) tic-tac-toe games on the value table V (a list, changed in place).

    V[index[code]] is the learner's estimate that the player who just made board `code` wins. Each
    learning player, on its turn, explores with probability epsilon (a random legal move) or moves
    greedily to the afterstate of the largest value; after a greedy move its previous afterstate S
    moves toward the new one S': V(S) <- V(S) + alpha (V(S') - V(S)). After an exploratory move
    nothing is updated (the book's rule), the chain goes on from the new afterstate. When the other
    player's move ends the game, S moves toward 0 (a loss) or toward the value of the drawn board.
    opponent: "self" (both players learn from V), "random", or "table" (greedy on opponent_values,
    indexed by code). side: the learner's player when not "self": "x", "o" or "alternate" (X in even
    games). Returns [X wins, O wins, draws].
    """
    stats = [0, 0, 0]
    for game in range(first_game, first_game + games):
        a = schedule(alpha[0], alpha[1], game, total_games)
        eps = schedule(epsilon[0], epsilon[1], game, total_games)
        agent = game % 2 if side == "alternate" else "xo".index(side)
        learns = [opponent == "self" or agent == 0, opponent == "self" or agent == 1]
        last = [None, None]               # each learner's previous afterstate (its table entry)
        code, cells = 0, [0] * 9
        for ply in range(9):
            p, mark = ply % 2, ply % 2 + 1            # X (mark 1) moves at even plies
            r = draws(seed, TICTACTOE_STREAM, game, ply)
            legal = [m for m in range(9) if cells[m] == 0]
            explored = False
            if learns[p] and uniform(r[0]) < eps:
                move, explored = legal[below(r[1], len(legal))], True
            elif learns[p]:
                move = greedy([V[index[code + mark * POW3[m]]] for m in legal], legal, r[2])
            elif opponent == "random":
                move = legal[below(r[1], len(legal))]
            else:
                move = greedy([opponent_values[code + mark * POW3[m]] for m in legal], legal, r[2])
            code += mark * POW3[move]
            cells[move] = mark
            if learns[p]:
                s = index[code]
                if not explored and last[p] is not None:
                    V[last[p]] = V[last[p]] + a * (V[s] - V[last[p]])
                last[p] = s
            result = outcomes[code]
            if result:
                q = 1 - p                                    # the player who did not make the last move
                if learns[q] and last[q] is not None:
                    target = V[index[code]] if result == DRAW else 0.0
                    V[last[q]] = V[last[q]] + a * (target - V[last[q]])
                stats[result - 1] += 1
                break
    return stats


def rl_tictactoe_td(values, index_map, outcomes, seeds, alpha, epsilon, opponent_values, opponent, side, first_game,
                    games, total_games):
    """genfast::rl_tictactoe_td: R independent runs, one per row of values (R, S)."""
    out = values.to(torch.float64).clone()
    stats = torch.zeros(values.shape[0], 3, dtype=torch.int64)
    index, outc = index_map.tolist(), outcomes.tolist()
    opp = opponent_values.tolist() if opponent_values is not None else None
    for run in range(values.shape[0]):
        V = out[run].tolist()
        stats[run] = torch.tensor(tictactoe_run(V, index, outc, int(seeds[run]), alpha[run].tolist(),
                                                epsilon[run].tolist(), opponent, opp, side, first_game, games,
                                                total_games))
        out[run] = torch.tensor(V, dtype=torch.float64)
    return out, stats


# ---------------------------------------------------------------------------------------- flippers

def flippers_run(Q, index, goals, seed, alpha, epsilon, gamma, first_game, games, total_games, max_moves,
                 goal_reward, move_reward):
    """One run of Q-learning Flippers games on the table Q (a list, changed in place).

    Q[index[board][move]] estimates the discounted reward to come after flipping `move` on `board`.
    A game starts on a random board that is not a goal and ends at a goal or after max_moves
    moves. Each move: explore with probability epsilon (a random tile) or flip the tile of the
    largest Q; then Q(s, a) <- Q(s, a) + alpha (r + gamma max_a' Q(s', a') - Q(s, a)), where
    r = move_reward (+ goal_reward on reaching a goal, whose future is 0). Returns [games solved,
    games cut at max_moves, moves in solved games].
    """
    starts = [b for b in range(512) if not goals[b]]
    stats = [0, 0, 0]
    for game in range(first_game, first_game + games):
        a = schedule(alpha[0], alpha[1], game, total_games)
        eps = schedule(epsilon[0], epsilon[1], game, total_games)
        board = starts[below(draws(seed, FLIPPERS_STREAM, game, 0)[0], len(starts))]
        for step in range(max_moves):
            r = draws(seed, FLIPPERS_STREAM, game, step + 1)
            if uniform(r[0]) < eps:
                move = below(r[1], 9)
            else:
                move = greedy([Q[index[board][m]] for m in range(9)], range(9), r[2])
            nxt = board ^ (1 << move)
            done = goals[nxt]
            if done:
                target = move_reward + goal_reward
            else:
                target = move_reward + gamma * max(Q[index[nxt][m]] for m in range(9))
            i = index[board][move]
            Q[i] = Q[i] + a * (target - Q[i])
            board = nxt
            if done:
                stats[0] += 1
                stats[2] += step + 1
                break
        else:
            stats[1] += 1
    return stats


def rl_flippers_q(q, index_map, goals, seeds, alpha, epsilon, gamma, first_game, games, total_games, max_moves,
                  goal_reward, move_reward):
    """genfast::rl_flippers_q: R independent runs, one per row of q (R, S)."""
    out = q.to(torch.float64).clone()
    stats = torch.zeros(q.shape[0], 3, dtype=torch.int64)
    index, goal = index_map.tolist(), [bool(g) for g in goals.tolist()]
    for run in range(q.shape[0]):
        Q = out[run].tolist()
        stats[run] = torch.tensor(flippers_run(Q, index, goal, int(seeds[run]), alpha[run].tolist(),
                                               epsilon[run].tolist(), float(gamma[run]), first_game, games,
                                               total_games, max_moves, goal_reward, move_reward))
        out[run] = torch.tensor(Q, dtype=torch.float64)
    return out, stats
