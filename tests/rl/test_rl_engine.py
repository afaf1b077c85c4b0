"""The tabular RL engines (genfast.ops.tictactoe_td / flippers_q): the counter-based random numbers,
native == reference bit for bit (seeds, opponents, sides, symmetry, thread counts, chunks), the
statistics of the games they play, hand-computed updates, opcheck and bad input."""

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from helpers import needs_native
from scipy import stats

from genfast import ops
from genfast.reference import rl as ref
from genfast.rl import boards, oracles
from genfast.rl.learners import TDValueLearner

OUT = boards.outcome_table()
GOALS = boards.goal_mask()


def ttt_tables(runs, symmetry=False, draw=0.5):
    return torch.from_numpy(np.stack([TDValueLearner.initial_table(draw, symmetry)] * runs))


def ttt(impl, runs=3, games=150, seeds=(11, 2, 7), symmetry=False, **kw):
    return ops.tictactoe_td(ttt_tables(runs, symmetry), boards.tictactoe_index_map(symmetry), OUT, list(seeds[:runs]),
                            games=games, impl=impl, **kw)


def flippers(impl, runs=3, games=150, seeds=(11, 2, 7), symmetry=False, **kw):
    q = torch.zeros(runs, 512 * 9, dtype=torch.float64)
    return ops.flippers_q(q, boards.flippers_index_map(symmetry), GOALS, list(seeds[:runs]), games=games, impl=impl,
                          **kw)


# ------------------------------------------------------------------------------------ random numbers

def test_philox_is_numpys_philox4x64_10():
    for key, counter in [((0, 0), 0), ((5, 1), 7 | 3 << 64), ((2 ** 64 - 1, 2 ** 63 + 5), 2 ** 256 - 2)]:
        bg = np.random.Philox(key=key[0] | key[1] << 64, counter=counter)
        want = [int(v) for v in bg.random_raw(4)]              # numpy counts up once before its first block
        c = counter + 1
        assert list(ref.philox4x64(tuple((c >> (64 * i)) & ref.MASK64 for i in range(4)), key)) == want


def test_uniform_and_below_by_hand():
    assert ref.uniform(0) == 0.0 and ref.uniform(ref.MASK64) == 1 - 2 ** -53
    assert ref.uniform(1 << 63) == 0.5
    assert ref.below(0, 9) == 0 and ref.below(ref.MASK64, 9) == 8
    assert ref.below((2 ** 32 // 3 + 1) << 32, 3) == 1                 # just past a third of the range


def test_draws_are_uniform():
    """Chi-square over 20 000 blocks: below(r, 9) for each word, and the explore test's uniform."""
    words = np.array([ref.draws(3, 1, g, p) for g in range(2000) for p in range(10)], dtype=np.uint64)
    for w in range(4):
        cells = [ref.below(int(v), 9) for v in words[:, w]]
        assert stats.chisquare(np.bincount(cells, minlength=9)).pvalue > 1e-4
    u = np.array([ref.uniform(int(v)) for v in words[:, 0]])
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    # different seeds, games and plies give unrelated words
    assert len({ref.draws(s, 1, g, p) for s in range(3) for g in range(3) for p in range(3)}) == 27


# ------------------------------------------------------------------------------- native == reference

@needs_native
@pytest.mark.parametrize("opponent,side", [("self", "x"), ("random", "x"), ("random", "o"), ("random", "alternate"),
                                           ("table", "alternate")])
@pytest.mark.parametrize("symmetry", [False, True])
def test_tictactoe_native_equals_reference_bit_for_bit(opponent, side, symmetry):
    kw = dict(alpha=(0.5, 0.05), epsilon=(0.3, 0.1), opponent=opponent, side=side, symmetry=symmetry)
    if opponent == "table":
        kw["opponent_values"] = torch.from_numpy(oracles.tictactoe().afterstate_values())
    v_ref, s_ref = ttt("reference", **kw)
    v_nat, s_nat = ttt("native", **kw)
    assert torch.equal(v_nat, v_ref) and torch.equal(s_nat, s_ref)
    assert (v_nat != ttt_tables(3, symmetry)).sum() > 50                      # it learned something
    assert s_nat.sum(1).tolist() == [150] * 3


@needs_native
@pytest.mark.parametrize("symmetry", [False, True])
@pytest.mark.parametrize("rewards", [(1.0, 0.0, 0.9), (0.0, -1.0, 1.0)])
def test_flippers_native_equals_reference_bit_for_bit(symmetry, rewards):
    goal, move, gamma = rewards
    kw = dict(alpha=(0.7, 0.2), epsilon=(0.9, 0.2), gamma=gamma, goal_reward=goal, move_reward=move, max_moves=30,
              symmetry=symmetry)
    q_ref, s_ref = flippers("reference", **kw)
    q_nat, s_nat = flippers("native", **kw)
    assert torch.equal(q_nat, q_ref) and torch.equal(s_nat, s_ref)
    assert (q_nat != 0).sum() > 100 and (s_nat[:, 0] + s_nat[:, 1]).tolist() == [150] * 3


@needs_native
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_native_tables_do_not_depend_on_the_thread_count(threads):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        v, s = ttt("native", runs=5, games=3000, seeds=(0, 1, 2, 3, 4), alpha=0.2, epsilon=0.1)
        q, t = flippers("native", runs=5, games=500, seeds=(0, 1, 2, 3, 4), epsilon=0.5)
    finally:
        torch.set_num_threads(before)
    v1, s1 = ttt("native", runs=5, games=3000, seeds=(0, 1, 2, 3, 4), alpha=0.2, epsilon=0.1)
    q1, t1 = flippers("native", runs=5, games=500, seeds=(0, 1, 2, 3, 4), epsilon=0.5)
    assert torch.equal(v, v1) and torch.equal(s, s1) and torch.equal(q, q1) and torch.equal(t, t1)
    # each run is its own: run 3 alone is row 3
    alone, _ = ops.tictactoe_td(ttt_tables(1), boards.tictactoe_index_map(), OUT, [3], alpha=0.2, epsilon=0.1,
                                games=3000)
    assert torch.equal(alone[0], v[3])


@pytest.mark.parametrize("impl", ["reference", pytest.param("native", marks=needs_native)])
def test_a_batch_of_runs_with_their_own_hyperparameters(impl):
    """One call sweeps seeds and hyperparameters: each row is the run its row's settings give alone."""
    alpha = torch.tensor([[0.5, 0.1], [0.2, 0.2], [0.9, 0.0]], dtype=torch.float64)
    epsilon = torch.tensor([[0.1, 0.1], [0.5, 0.0], [1.0, 0.3]], dtype=torch.float64)
    gamma = torch.tensor([0.9, 0.5, 1.0], dtype=torch.float64)
    idx, fidx = boards.tictactoe_index_map(), boards.flippers_index_map()
    v, s = ops.tictactoe_td(ttt_tables(3), idx, OUT, [3, 3, 8], alpha=alpha, epsilon=epsilon, games=100, impl=impl)
    q0 = torch.zeros(3, 4608, dtype=torch.float64)
    q, t = ops.flippers_q(q0, fidx, GOALS, [3, 3, 8], alpha=alpha, epsilon=epsilon, gamma=gamma, games=60,
                          max_moves=30, impl=impl)
    for r in range(3):
        v1, s1 = ops.tictactoe_td(ttt_tables(1), idx, OUT, [[3, 3, 8][r]], alpha=alpha[r:r + 1],
                                  epsilon=epsilon[r:r + 1], games=100, impl=impl)
        q1, t1 = ops.flippers_q(q0[:1], fidx, GOALS, [[3, 3, 8][r]], alpha=alpha[r:r + 1], epsilon=epsilon[r:r + 1],
                                gamma=gamma[r:r + 1], games=60, max_moves=30, impl=impl)
        assert torch.equal(v1[0], v[r]) and torch.equal(s1[0], s[r])
        assert torch.equal(q1[0], q[r]) and torch.equal(t1[0], t[r])
    assert not torch.equal(v[0], v[1])                # same seed, other settings: another run


@pytest.mark.parametrize("impl", ["reference", pytest.param("native", marks=needs_native)])
def test_a_run_split_into_calls_is_the_same_run(impl):
    kw = dict(alpha=(0.5, 0.0), epsilon=(0.5, 0.0), total_games=120, impl=impl)
    idx = boards.tictactoe_index_map()
    whole, s = ops.tictactoe_td(ttt_tables(2), idx, OUT, [4, 5], games=120, **kw)
    part, s1 = ops.tictactoe_td(ttt_tables(2), idx, OUT, [4, 5], games=50, **kw)
    part, s2 = ops.tictactoe_td(part, idx, OUT, [4, 5], games=70, first_game=50, **kw)
    assert torch.equal(whole, part) and torch.equal(s, s1 + s2)
    q = torch.zeros(2, 4608, dtype=torch.float64)
    fidx = boards.flippers_index_map()
    whole, s = ops.flippers_q(q, fidx, GOALS, [4, 5], games=120, **kw)
    part, s1 = ops.flippers_q(q, fidx, GOALS, [4, 5], games=30, **kw)
    part, s2 = ops.flippers_q(part, fidx, GOALS, [4, 5], games=90, first_game=30, **kw)
    assert torch.equal(whole, part) and torch.equal(s, s1 + s2)


@pytest.mark.parametrize("impl", ["reference", pytest.param("native", marks=needs_native)])
def test_no_games_and_no_runs(impl):
    v, s = ttt(impl, games=0)
    assert torch.equal(v, ttt_tables(3)) and s.sum() == 0
    v, s = ops.tictactoe_td(torch.zeros(0, 19683, dtype=torch.float64), boards.tictactoe_index_map(), OUT, [],
                            games=10, impl=impl)
    assert v.shape == (0, 19683) and s.shape == (0, 3)


# ------------------------------------------------------------------------------ what the games do

def _random_game_odds():
    """Exact P(X wins), P(O wins), P(draw) of two uniformly random players, by enumeration."""
    @functools.lru_cache(maxsize=None)
    def walk(code, mark):
        result = int(OUT[code])
        if result:
            return tuple(Fraction(int(result == r)) for r in (1, 2, 3))
        moves = [m for m in range(9) if (code // boards.POW3[m]) % 3 == 0]
        children = [walk(code + mark * boards.POW3[m], 3 - mark) for m in moves]
        return tuple(sum(c[r] for c in children) / len(moves) for r in range(3))
    return [float(p) for p in walk(0, 1)]


@needs_native
def test_random_games_have_the_exact_outcome_odds():
    """epsilon = 1 against the random opponent: both players move uniformly at random; over 200 000
    games the X-win, O-win and draw counts fit the exact odds (0.585, 0.288, 0.127)."""
    odds = _random_game_odds()
    assert abs(odds[0] - 0.5849) < 1e-3 and abs(odds[2] - 0.1270) < 1e-3
    _, s = ttt("native", runs=4, games=50_000, seeds=(0, 1, 2, 3), alpha=0.0, epsilon=1.0, opponent="random")
    counts = s.sum(0).numpy()
    assert stats.chisquare(counts, np.array(odds) * counts.sum()).pvalue > 1e-4


@needs_native
def test_flippers_start_boards_and_random_flips_are_uniform():
    """One random flip from a random start: solved with probability mean over the 506 starts of
    (flips that reach a goal) / 9."""
    dist = oracles.flippers_distances()
    starts = [b for b in range(512) if dist[b] > 0]
    p = np.mean([len(oracles.flippers_optimal_moves(b)) / 9 if dist[b] == 1 else 0 for b in starts])
    _, s = flippers("native", runs=4, games=100_000, seeds=(0, 1, 2, 3), alpha=0.0, epsilon=1.0, max_moves=1)
    solved, n = int(s[:, 0].sum()), 400_000
    assert abs(solved - n * p) < 5 * math.sqrt(n * p * (1 - p))
    assert int(s[:, 2].sum()) == solved                      # one move each


def _distinct_values(table, seed):
    """`table` with every entry of an unfinished board replaced by a distinct random value: greedy
    play has no ties, so a game follows from the table alone."""
    rng = np.random.default_rng(seed)
    out = table.copy()
    free = OUT == boards.ONGOING if table.shape == (19683,) else np.ones(table.shape, dtype=bool)
    out[free] = rng.uniform(0.2, 0.8, int(free.sum()))
    return out


@pytest.mark.parametrize("impl", ["reference", pytest.param("native", marks=needs_native)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_td_updates_by_hand(impl, seed):
    """Self-play without exploration from a table without ties, computed here move by move:
    after each move the mover's previous afterstate moves by alpha toward its new one; when a
    move ends the game, the other player's last afterstate moves toward 0 (loss) or the draw."""
    start = _distinct_values(TDValueLearner.initial_table(0.5), seed)
    V, last, code, alpha = start.copy(), {1: None, 2: None}, 0, 0.25
    for ply in range(9):
        mark = ply % 2 + 1
        moves = [m for m in range(9) if (code // boards.POW3[m]) % 3 == 0]
        code += mark * boards.POW3[max(moves, key=lambda m: V[code + mark * boards.POW3[m]])]
        if last[mark] is not None:
            V[last[mark]] += alpha * (V[code] - V[last[mark]])
        last[mark] = code
        if OUT[code]:
            other = last[3 - mark]
            V[other] += alpha * ((V[code] if OUT[code] == boards.DRAW else 0.0) - V[other])
            break
    got, s = ops.tictactoe_td(torch.from_numpy(start)[None], boards.tictactoe_index_map(), OUT, [seed], alpha=alpha,
                              epsilon=0.0, games=1, impl=impl)
    np.testing.assert_array_equal(got[0].numpy(), V)
    assert (V != start).sum() >= 3 and s[0].tolist() == [int(OUT[code] == r) for r in (1, 2, 3)]


@pytest.mark.parametrize("impl", ["reference", pytest.param("native", marks=needs_native)])
@pytest.mark.parametrize("seed", [0, 5])
def test_q_updates_by_hand(impl, seed):
    """One greedy game from the engine's start board (its first random number), computed here:
    Q(s, a) += alpha (r + gamma max Q(s', .) - Q(s, a)), r = 1 and no future at a goal."""
    start_q = _distinct_values(np.zeros((512, 9)), seed)
    Q, alpha, gamma = start_q.copy(), 0.5, 0.9
    starts = [b for b in range(512) if not GOALS[b]]
    board = starts[ref.below(ref.draws(seed, ref.FLIPPERS_STREAM, 0, 0)[0], len(starts))]
    moves = 0
    while moves < 6 and not GOALS[board]:
        move = int(np.argmax(Q[board]))
        nxt = board ^ (1 << move)
        target = 1.0 if GOALS[nxt] else gamma * Q[nxt].max()
        Q[board, move] += alpha * (target - Q[board, move])
        board, moves = nxt, moves + 1
    got, s = ops.flippers_q(torch.from_numpy(start_q.reshape(1, -1)), boards.flippers_index_map(), GOALS, [seed],
                            alpha=alpha, epsilon=0.0, gamma=gamma, games=1, max_moves=6, impl=impl)
    np.testing.assert_array_equal(got[0].numpy().reshape(512, 9), Q)
    assert s[0].tolist() == ([1, 0, moves] if GOALS[board] else [0, 1, 0])


# ------------------------------------------------------------------------------------ op contract

@needs_native
def test_opcheck():
    idx = torch.from_numpy(np.array(boards.tictactoe_index_map()))
    out = torch.from_numpy(np.array(OUT))
    args = (ttt_tables(2), idx, out, torch.tensor([1, 2]), torch.tensor([[0.3, 0.1]] * 2, dtype=torch.float64),
            torch.tensor([[0.2, 0.2]] * 2, dtype=torch.float64), None, "self", "x", 0, 20, 20)
    torch.library.opcheck(torch.ops.genfast.rl_tictactoe_td.default, args)
    opp = torch.from_numpy(oracles.tictactoe().afterstate_values())
    torch.library.opcheck(torch.ops.genfast.rl_tictactoe_td.default, args[:6] + (opp, "table", "alternate") + args[9:])
    fidx = torch.from_numpy(np.array(boards.flippers_index_map()))
    fargs = (torch.zeros(2, 4608, dtype=torch.float64), fidx, torch.from_numpy(GOALS), torch.tensor([1, 2]),
             torch.tensor([[0.5, 0.5]] * 2, dtype=torch.float64), torch.tensor([[0.5, 0.1]] * 2, dtype=torch.float64),
             torch.tensor([0.9, 0.8], dtype=torch.float64), 0, 20, 20, 50, 1.0, 0.0)
    torch.library.opcheck(torch.ops.genfast.rl_flippers_q.default, fargs)


@pytest.mark.parametrize("impl", ["reference", pytest.param("native", marks=needs_native)])
def test_bad_input_is_named(impl):
    idx = boards.tictactoe_index_map()
    with pytest.raises(ValueError, match="values of shape"):
        ops.tictactoe_td(torch.zeros(19683, dtype=torch.float64), idx, OUT, [0], games=1, impl=impl)
    with pytest.raises(ValueError, match="expected values to be finite"):
        ops.tictactoe_td(torch.full((1, 19683), float("nan"), dtype=torch.float64), idx, OUT, [0], games=1, impl=impl)
    with pytest.raises(ValueError, match=r"index_map to be values in \[0, 99\]"):
        ops.tictactoe_td(torch.zeros(1, 100, dtype=torch.float64), idx, OUT, [0], games=1, impl=impl)
    with pytest.raises(ValueError, match="outcomes"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT[:10], [0], games=1, impl=impl)
    with pytest.raises(ValueError, match=r"expected seeds to have one seed per run, shape \(1,\)"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0, 1], games=1, impl=impl)
    with pytest.raises(ValueError, match="seeds to be integers >= 0"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, torch.tensor([-1]), games=1, impl=impl)
    with pytest.raises(ValueError, match=r"alpha to be in \[0, 1\]"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0], alpha=1.5, games=1, impl=impl)
    with pytest.raises(ValueError, match=r"epsilon to be a number, a \(start, end\) pair"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0], epsilon=(0.1, 0.2, 0.3), games=1, impl=impl)
    with pytest.raises(ValueError, match="opponent to be one of"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0], opponent="perfect", games=1, impl=impl)
    with pytest.raises(ValueError, match="opponent 'table' needs opponent_values"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0], opponent="table", games=1, impl=impl)
    with pytest.raises(ValueError, match="side to be one of"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0], side="X", games=1, impl=impl)
    with pytest.raises(ValueError, match="games to be an integer >= 0"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0], games=-1, impl=impl)
    with pytest.raises(ValueError, match="total_games to be an integer >= 10"):
        ops.tictactoe_td(ttt_tables(1), idx, OUT, [0], games=10, total_games=5, impl=impl)
    with pytest.raises(ValueError, match="values to be a float tensor"):
        ops.tictactoe_td(torch.zeros(1, 19683, dtype=torch.int64), idx, OUT, [0], games=1, impl=impl)
    fidx, q = boards.flippers_index_map(), torch.zeros(1, 4608, dtype=torch.float64)
    with pytest.raises(ValueError, match="gamma to be in"):
        ops.flippers_q(q, fidx, GOALS, [0], gamma=2.0, games=1, impl=impl)
    with pytest.raises(ValueError, match="max_moves to be an integer >= 1"):
        ops.flippers_q(q, fidx, GOALS, [0], max_moves=0, games=1, impl=impl)
    with pytest.raises(ValueError, match="at least one board that is not a goal"):
        ops.flippers_q(q, fidx, np.ones(512, dtype=bool), [0], games=1, impl=impl)
    with pytest.raises(ValueError, match="move_reward to be a finite number"):
        ops.flippers_q(q, fidx, GOALS, [0], move_reward=float("inf"), games=1, impl=impl)
    with pytest.raises(ValueError, match="index_map of shape"):
        ops.flippers_q(q, idx, GOALS, [0], games=1, impl=impl)


@needs_native
def test_the_native_op_checks_its_own_input():
    """Called directly (no Python checks in front), the C++ op refuses bad input naming the argument."""
    idx = torch.from_numpy(np.array(boards.tictactoe_index_map()))
    out = torch.from_numpy(np.array(OUT))
    pair = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    good = [ttt_tables(1), idx, out, torch.tensor([1]), pair, pair, None, "self", "x", 0, 5, 5]

    def call(i, value):
        args = list(good)
        args[i] = value
        return torch.ops.genfast.rl_tictactoe_td(*args)

    for i, value, msg in [(0, torch.zeros(1, 19683), "values to be float64"),
                          (1, idx[:5], "index_map to be int64 of shape"),
                          (1, idx * 0 + 19683, r"index_map entries in \[0, 19683\)"),
                          (2, out * 0 + 4, "outcomes in 0..3"),
                          (3, torch.tensor([-3]), "seeds >= 0"),
                          (4, pair * 5, r"alpha in \[0, 1\]"),
                          (7, "other", "opponent to be one of"),
                          (8, "z", "side to be one of"),
                          (11, 2, "total_games >= max"),
                          (7, "table", "opponent 'table' needs opponent_values")]:
        with pytest.raises(RuntimeError, match=msg):
            call(i, value)
    fidx = torch.from_numpy(np.array(boards.flippers_index_map()))
    with pytest.raises(RuntimeError, match="max_moves >= 1"):
        torch.ops.genfast.rl_flippers_q(torch.zeros(1, 4608, dtype=torch.float64), fidx, torch.from_numpy(GOALS),
                                        torch.tensor([1]), pair, pair, torch.tensor([0.9], dtype=torch.float64), 0, 5,
                                        5, 0, 1.0, 0.0)
