"""The rules (genfast.rl.boards), the exact oracles on hand-checked positions, and the PettingZoo /
Gymnasium environments (their API checkers, tictactoe_v3's observations, illegal moves)."""

import itertools
import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")     # PettingZoo's tictactoe_v3 imports pygame

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.classic.tictactoe import tictactoe as tictactoe_v3  # noqa: E402
from pettingzoo.test import api_test  # noqa: E402

from genfast.rl import FlippersEnv, TicTacToeEnv, boards, oracles, tictactoe_env

X, O, E = boards.X, boards.O, boards.EMPTY


def board(text: str) -> list[int]:
    """'X.O|...|..X' -> cells."""
    return [{"X": X, "O": O, ".": E}[ch] for ch in text.replace("|", "")]


# ------------------------------------------------------------------------------------------ boards

def test_codes_round_trip_and_count_what_legal_play_reaches():
    for code in (0, 1, 2, 3, 19682, 12345):
        assert boards.encode(boards.decode(code)) == code
    assert boards.encode(board("X..|...|..O")) == 1 + 2 * 3 ** 8
    reach = boards.reachable_codes()
    out = boards.outcome_table()[list(reach)]
    assert len(reach) == 5478                                               # the known count
    assert [(out == r).sum() for r in (boards.X_WINS, boards.O_WINS, boards.DRAW)] == [626, 316, 16]
    assert all(boards.is_legal_position(boards.decode(c)) for c in reach)
    assert np.array_equal(boards.cells_table()[12345], boards.decode(12345))


def test_symmetries_form_the_group_of_the_square():
    perms = set(boards.SYMMETRIES)
    assert len(perms) == 8 and tuple(range(9)) in perms
    for p, q in itertools.product(perms, perms):
        assert tuple(q[p[a]] for a in range(9)) in perms                   # closed under composition
    lines = {frozenset(line) for line in boards.LINES}
    for p in perms:
        assert {frozenset(p[a] for a in line) for line in lines} == lines  # lines go to lines
        goals = {boards.transform_board(g, p) for g in boards.FLIPPERS_GOALS}
        assert goals == set(boards.FLIPPERS_GOALS)


def test_symmetric_boards_share_an_entry():
    index = boards.tictactoe_index_map(symmetry=True)
    reach = list(boards.reachable_codes())
    assert len(set(index[reach].tolist())) == 765                           # positions up to symmetry
    code = boards.encode(board("X..|.O.|..."))
    images = {boards.encode(boards.transform(boards.decode(code), p)) for p in boards.SYMMETRIES}
    assert len(images) == 4 and {int(index[c]) for c in images} == {min(images)}
    assert np.array_equal(boards.tictactoe_index_map(False), np.arange(19683))
    fmap = boards.flippers_index_map(symmetry=True)
    s, a = 0b000000011, 2
    pairs = {(boards.transform_board(s, p), p[a]) for p in boards.SYMMETRIES}
    assert {int(fmap[b, m]) for b, m in pairs} == {min(b * 9 + m for b, m in pairs)}


def test_illegal_moves_name_the_move_and_the_board():
    cells = board("X..|.O.|...")
    with pytest.raises(ValueError, match=r"move 4: cell 4 is taken \(O\) on the board X\.\.\|\.O\.\|\.\.\."):
        boards.check_move(cells, 4)
    with pytest.raises(ValueError, match=r"expected a cell in \[0, 8\], got 9 on the board"):
        boards.check_move(cells, 9)
    with pytest.raises(ValueError, match="got 'a'"):
        boards.check_move(cells, "a")
    with pytest.raises(ValueError, match=r"move 5: the game is over on the board XXX\|OO\.\|\.\.\."):
        boards.check_move(board("XXX|OO.|..."), 5)


def test_flippers_boards():
    assert len(boards.FLIPPERS_GOALS) == 6 and boards.goal_mask().sum() == 6
    assert boards.parse_flippers("010 010 010") == 0b010010010 == boards.parse_flippers("146")
    assert boards.parse_flippers(".o.|.o.|.o.") == 146 and boards.is_goal(146)
    assert boards.read_flippers(boards.bits(300)) == 300
    with pytest.raises(ValueError, match="expected nine tiles"):
        boards.parse_flippers("01.o")
    with pytest.raises(ValueError, match=r"board in \[0, 511\], got 512"):
        boards.parse_flippers("512")
    assert boards.render_flippers(0b100010001) == "o . .\n. o .\n. . o"


# ----------------------------------------------------------------------------------------- oracles

@pytest.mark.parametrize("position,value_x", [
    ("...|...|...", 0),            # tic-tac-toe is a draw
    ("X..|...|...", 0),
    ("XO.|...|...", 1),            # after a corner opening, every reply but the centre loses
    ("X.O|...|...", 1),
    ("X..|..O|...", 1),
    ("X..|...|..O", 1),
    ("X..|.O.|...", 0),            # ... the centre draws
    (".O.|.X.|...", 1),            # after the centre opening, an edge reply loses
    ("O..|.X.|...", 0),            # ... a corner draws
    ("XX.|OO.|...", 1),            # X to move wins at once
    ("XX.|.O.|...", 0),            # O to move must block at 2, then it is a draw
    ("XXX|OO.|...", 1),            # over: X has won
    ("XOX|XOO|OXX", 0),            # a full board without a line
])
def test_minimax_values_of_hand_checked_positions(position, value_x):
    oracle = oracles.tictactoe()
    code = boards.encode(board(position))
    assert oracle.value_x[code] == value_x
    mover = 1 if boards.to_move(board(position)) == X else -1
    assert oracle.value(code) == mover * value_x


def test_optimal_moves_of_hand_checked_positions():
    oracle = oracles.tictactoe()
    assert oracle.optimal_moves(0) == list(range(9))                        # every opening draws
    assert oracle.optimal_moves(boards.encode(board("XX.|OO.|..."))) == [2]
    assert oracle.optimal_moves(boards.encode(board("XX.|.O.|..."))) == [2]   # O's only block
    assert oracle.optimal_moves(boards.encode(board("X..|...|..."))) == [4]   # only the centre holds the draw
    assert oracle.optimal_moves(boards.encode(board("XXX|OO.|..."))) == []    # the game is over
    with pytest.raises(ValueError, match="not reached by legal play"):
        oracle.value(boards.encode(board("XXX|XXX|OOO")))


def _negamax(cells, mark):
    """Plain, unmemoised minimax: the value for the player to move."""
    result = boards.outcome(cells)
    if result != boards.ONGOING:
        return 0 if result == boards.DRAW else -1                           # the player to move lost
    best = -2
    for m in boards.legal_moves(cells):
        cells[m] = mark
        best = max(best, -_negamax(cells, 3 - mark))
        cells[m] = E
    return best


def test_oracle_agrees_with_plain_minimax_on_positions_after_three_moves():
    oracle = oracles.tictactoe()
    rng = np.random.default_rng(0)
    codes = [c for c in boards.reachable_codes() if sum(v != E for v in boards.decode(c)) == 3]
    for code in rng.choice(codes, 40, replace=False):
        cells = boards.decode(int(code))
        assert oracle.value(int(code)) == _negamax(cells, boards.to_move(cells))


def test_perfect_play_table():
    """The mover's value as 1 / 0.5 / 0: greedy on it is minimax play."""
    oracle, table = oracles.tictactoe(), oracles.tictactoe().afterstate_values()
    for code in oracle.decision_codes()[::97]:
        cells = boards.decode(int(code))
        mark = boards.to_move(cells)
        values = {m: table[code + mark * boards.POW3[m]] for m in boards.legal_moves(cells)}
        best = max(values.values())
        assert sorted(m for m, v in values.items() if v == best) == oracle.optimal_moves(int(code))


def test_flippers_distances_are_the_hamming_distance_to_the_nearest_goal():
    dist = oracles.flippers_distances()
    hamming = [min(bin(b ^ g).count("1") for g in boards.FLIPPERS_GOALS) for b in range(512)]
    assert dist.tolist() == hamming and dist.max() == 6
    assert (dist == 0).sum() == 6 and np.bincount(dist).sum() == 512
    assert oracles.flippers_optimal_moves(0b000000011) == [2]                # one flip completes the top row
    assert oracles.flippers_optimal_moves(0) == list(range(9))               # any tile starts a line
    assert oracles.flippers_optimal_moves(0b111) == []


# ------------------------------------------------------------------------------------ environments

def test_pettingzoo_api_test_passes():
    api_test(tictactoe_env(), num_cycles=200)
    api_test(TicTacToeEnv(), num_cycles=200)


def test_gymnasium_check_env_passes():
    check_env(FlippersEnv())
    check_env(FlippersEnv(render_mode="ansi"), skip_render_check=False)
    env = gymnasium.make("genfast/Flippers-v0", max_moves=5)
    obs, info = env.reset(seed=3)
    assert obs.shape == (9,) and obs.dtype == np.int8 and info["distance"] > 0


def test_observations_are_those_of_pettingzoo_tictactoe_v3():
    """The same random games in both environments: equal observations, masks, rewards, endings."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        ours, theirs = tictactoe_env(), tictactoe_v3.env()
        ours.reset()
        theirs.reset()
        for agent_ours, agent_theirs in zip(ours.agent_iter(), theirs.agent_iter()):
            assert agent_ours == agent_theirs
            a, b = ours.last(), theirs.last()
            assert np.array_equal(a[0]["observation"], b[0]["observation"])
            assert a[1:4] == b[1:4]
            over = a[2]           # (tictactoe_v3 keeps the empty cells in the mask of a finished game)
            assert np.array_equal(a[0]["action_mask"], 0 * b[0]["action_mask"] if over else b[0]["action_mask"])
            for other in ours.agents:
                assert np.array_equal(ours.observe(other)["observation"], theirs.observe(other)["observation"])
                if not over:
                    assert np.array_equal(ours.observe(other)["action_mask"], theirs.observe(other)["action_mask"])
            move = None if a[2] else int(rng.choice(np.flatnonzero(a[0]["action_mask"])))
            ours.step(move)
            theirs.step(move)


def test_tictactoe_env_refuses_illegal_moves_and_renders_text():
    env = TicTacToeEnv(render_mode="ansi")
    env.reset()
    env.step(4)
    with pytest.raises(ValueError, match=r"move 4: cell 4 is taken \(X\) on the board \.\.\.\|\.X\.\|\.\.\."):
        env.step(4)
    with pytest.raises(ValueError, match="expected a cell in"):
        env.step(11)
    for move in (0, 1, 8, 2, 6):          # O 0, X 1, O 8, X 2, O 6: X has 1, 2, 4; O 0, 6, 8
        env.step(move)
    env.step(7)                           # X: 1, 4, 7 -> column win
    assert env.terminations == {"player_1": True, "player_2": True}
    assert env.rewards == {"player_1": 1, "player_2": -1}
    with pytest.raises(ValueError, match="the game is over"):
        env.step(3)
    assert env.render() == " O | X | X\n---+---+---\n   | X |  \n---+---+---\n O | X | O"


def test_flippers_env_plays_and_refuses_illegal_moves():
    env = FlippersEnv(max_moves=3, move_reward=-1.0)
    obs, info = env.reset(options={"board": "110000000"})
    assert info == {"board": 0b011, "distance": 1, "moves": 0}
    obs, reward, terminated, truncated, info = env.step(2)
    assert (reward, terminated, truncated) == (0.0, True, False) and obs.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="move 0: the game is over"):
        env.step(0)
    env.reset(options={"board": 0})
    for _ in range(3):
        *_, terminated, truncated, _ = env.step(4)      # flip the centre back and forth
    assert truncated and not terminated
    with pytest.raises(ValueError, match=r"expected a tile in \[0, 8\], got 9"):
        env.reset(options={"board": 5})
        env.step(9)
    with pytest.raises(ValueError, match="render_mode"):
        FlippersEnv(render_mode="rgb_array")
