"""The learners (observations in, moves out, files), training (targets at a small budget, resume after
a kill bit for bit, Ctrl-C, the learning curves) and loading only what is a genfast rl agent."""

import json
import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")     # PettingZoo's tictactoe_v3 imports pygame

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import code_running_pickle, needs_native  # noqa: E402
from pettingzoo.classic.tictactoe import tictactoe as tictactoe_v3  # noqa: E402
from PIL import Image  # noqa: E402

from genfast.rl import (FlippersConfig, QLearner, TDValueLearner, TicTacToeConfig, TrainingInterrupted,  # noqa: E402
                        boards, evaluate_flippers, evaluate_tictactoe, load_agent, oracles, train_flippers,
                        train_tictactoe)
from genfast.rl.metrics import flippers_targets, tictactoe_targets  # noqa: E402
from genfast.training import weights  # noqa: E402

X, O, E = boards.X, boards.O, boards.EMPTY
QUIET = dict(progress=False)


@pytest.fixture(scope="module")
def ttt(tmp_path_factory):
    """The small-budget tic-tac-toe agent: 60 000 self-play games with the CLI's other defaults."""
    out = tmp_path_factory.mktemp("ttt") / "agent.safetensors"
    return train_tictactoe(out, TicTacToeConfig(games=60_000, eval_every=20_000), **QUIET)


@pytest.fixture(scope="module")
def flip(tmp_path_factory):
    out = tmp_path_factory.mktemp("flippers") / "agent.safetensors"
    return train_flippers(out, FlippersConfig(), **QUIET)


# -------------------------------------------------------------------------------------- learners

def test_initial_table():
    v = TDValueLearner.initial_table(draw_value=0.3)
    out = boards.outcome_table()
    assert (v[out == boards.ONGOING] == 0.5).all() and (v[out == boards.DRAW] == 0.3).all()
    assert (v[(out == boards.X_WINS) | (out == boards.O_WINS)] == 1.0).all()
    sym = TDValueLearner.initial_table(symmetry=True)
    assert sym[boards.encode([X, X, X, O, O, E, E, E, E])] == 1.0


def test_observations_of_either_player_give_the_mover_its_afterstates():
    agent = TDValueLearner()
    cells = [X, E, E, E, O, E, E, E, E]                                 # X to move
    code = boards.encode(cells)
    agent.values[code + X * 3 ** 8] = 0.9                              # X at cell 8 looks best to X
    obs = boards.to_observation(cells, X, turn=True)
    assert agent.act(obs) == 8
    values = agent.move_values(obs)
    assert np.isnan(values[[0, 4]]).all() and values[8] == 0.9 and values[1] == 0.5
    assert agent.value(obs) == 0.9
    # the same board seen by O, who has just moved: its own afterstate's value
    agent.values[code] = 0.2
    assert agent.value(boards.to_observation(cells, O, turn=False)) == 0.2
    with pytest.raises(ValueError, match=r"not the observer's turn on the board X\.\.\|\.O\.\|\.\.\."):
        agent.act(boards.to_observation(cells, O, turn=False))
    # planes alone: the observer is the player to move
    assert agent.act(obs["observation"]) == 8
    # a finished game: 1, 0 or the draw value for the observer
    won = [X, X, X, O, O, E, E, E, E]
    assert agent.value(boards.to_observation(won, X, turn=False)) == 1.0
    assert agent.value(boards.to_observation(won, O, turn=False)) == 0.0


def test_bad_observations_are_named():
    agent = TDValueLearner()
    with pytest.raises(ValueError, match=r"observation: expected \(3, 3, 2\) planes"):
        agent.act(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="keys"):
        agent.act({"board": 1})
    both = np.zeros((3, 3, 2), dtype=np.int8)
    both[0, 0] = 1
    with pytest.raises(ValueError, match=r"cells \[0\] hold both players' marks"):
        agent.act(both)
    many = np.zeros((3, 3, 2), dtype=np.int8)
    many[0, :, 0] = 1
    with pytest.raises(ValueError, match="3 against 0 marks"):
        agent.act(many)
    obs = boards.to_observation([X] + [E] * 8, O, turn=True)
    obs["action_mask"] = np.ones(9, dtype=np.int8)
    with pytest.raises(ValueError, match="does not match the empty cells"):
        agent.act(obs)
    with pytest.raises(ValueError, match="epsilon > 0 needs rng"):
        agent.act(boards.to_observation([E] * 9, X, turn=True), epsilon=0.5)


def test_act_is_the_greedy_policy_on_every_position(ttt):
    agent = ttt.model
    policy = agent.greedy_policy()
    for code in oracles.tictactoe().decision_codes()[::7]:
        cells = boards.decode(int(code))
        assert agent.act(boards.to_observation(cells, boards.to_move(cells), turn=True)) == policy[code]
    rng = np.random.default_rng(0)
    moves = [agent.act(boards.to_observation([E] * 9, X, turn=True), epsilon=1.0, rng=rng) for _ in range(900)]
    assert np.bincount(moves, minlength=9).min() > 60                  # epsilon 1: every cell, about 100 each


def test_the_agent_plays_in_pettingzoos_own_tictactoe_v3(ttt):
    """Drop-in: act(obs) in tictactoe_v3's loop, as either player, against a random player; an
    illegal move would end a game with -1 (TerminateIllegalWrapper)."""
    rng = np.random.default_rng(1)
    scores = {"player_1": [], "player_2": []}
    for game in range(100):
        env = tictactoe_v3.env()
        env.reset(seed=game)
        me = "player_1" if game % 2 == 0 else "player_2"
        for agent in env.agent_iter():
            obs, reward, terminated, truncated, _ = env.last()
            if terminated or truncated:
                if agent == me:
                    scores[me].append(reward)
                env.step(None)
            elif agent == me:
                env.step(ttt.model.act(obs))
            else:
                env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
    assert min(scores["player_1"] + scores["player_2"]) >= 0            # never lost, never an illegal move
    assert np.mean(scores["player_1"]) > 0.9


def test_qlearner_observations_and_solutions(flip):
    agent = flip.model
    obs = boards.bits(0b000000011)
    assert agent.act(obs) == 2 and agent.act(3) == 2
    assert agent.value(obs) == agent.q_values(obs).max() > 0.9
    path = agent.solve("110000000")
    assert [m for _, m, _ in path] == [2] and len(agent.solve(0b111)) == 0
    with pytest.raises(ValueError, match="expected nine 0/1 tiles"):
        agent.act([0, 1, 2])


# ---------------------------------------------------------------------------------- the targets

def test_tictactoe_agent_meets_the_targets_at_a_small_budget(ttt):
    final = ttt.info["final"]
    assert final["eval_games"] == 1000
    assert tictactoe_targets(final) == {"never_loses_to_perfect_play": True, "wins_90_percent_vs_random_as_x": True}
    assert final["optimal_move_share"] > 0.95
    # the evaluation is the saved agent's
    again = evaluate_tictactoe(load_agent(ttt.output), games=1000, seed=0)
    assert again == final


def test_flippers_agent_solves_every_board_in_the_fewest_flips(flip):
    assert flippers_targets(flip.info["final"]) == {"solves_every_board_in_fewest_moves": True}
    lengths = []
    for start in range(512):
        if not boards.is_goal(start):
            lengths.append(len(flip.model.solve(start)) - oracles.flippers_distances()[start])
    assert max(lengths) == 0 and len(lengths) == 506


def test_an_untrained_agent_does_not_meet_them():
    """The evaluation can fail: a table of 0.5 plays the first free cell and loses to perfect play."""
    report = evaluate_tictactoe(TDValueLearner(), games=200)
    assert not tictactoe_targets(report)["never_loses_to_perfect_play"]
    assert evaluate_flippers(QLearner())["optimal_share"] < 0.3


# ------------------------------------------------------------------------------------- the files

def test_save_and_load_round_trip(tmp_path, ttt, flip):
    loaded = load_agent(ttt.output)
    assert isinstance(loaded, TDValueLearner) and np.array_equal(loaded.values, ttt.model.values)
    assert loaded.config["training"]["games"] == 60_000 and loaded.config["targets"]["never_loses_to_perfect_play"]
    loaded = load_agent(flip.output, kind="rl-flippers")
    assert isinstance(loaded, QLearner) and np.array_equal(loaded.q, flip.model.q)
    sym = TDValueLearner(symmetry=True, draw_value=0.2)
    sym.save(tmp_path / "sym.safetensors")
    back = load_agent(tmp_path / "sym.safetensors")
    assert back.symmetry and back.draw_value == 0.2 and np.array_equal(back.values, sym.values)


def test_wrong_game_size_or_kind_is_refused(tmp_path, ttt, flip):
    with pytest.raises(ValueError, match="is a Flippers agent, not a tic-tac-toe agent"):
        load_agent(flip.output, kind="rl-tictactoe")
    weights.save(tmp_path / "small.safetensors", {"values": torch.zeros(10, dtype=torch.float64)},
                 kind="rl-tictactoe")
    with pytest.raises(ValueError, match="holds no tic-tac-toe table of 19683 values"):
        load_agent(tmp_path / "small.safetensors")
    weights.save(tmp_path / "q.safetensors", {"q": torch.zeros(512, 8, dtype=torch.float64)}, kind="rl-flippers")
    with pytest.raises(ValueError, match="holds no Flippers table of 512 x 9"):
        load_agent(tmp_path / "q.safetensors")
    weights.save(tmp_path / "text.safetensors", {"w": torch.zeros(3)}, kind="text")
    with pytest.raises(ValueError, match="is not a genfast rl agent \\(genfast text weights\\)"):
        load_agent(tmp_path / "text.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="is not a genfast rl agent"):
        load_agent(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match="agent: no such file"):
        load_agent(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_code_running_pickle_is_never_run(tmp_path, suffix):
    marker = tmp_path / "ran"
    path = code_running_pickle(tmp_path / f"evil{suffix}", marker)
    with pytest.raises(ValueError, match="is not a genfast rl agent"):
        load_agent(path)
    assert not marker.exists()


def test_a_code_running_checkpoint_is_never_run(tmp_path):
    """The training checkpoint is the other file genfast.rl reads."""
    marker = tmp_path / "ran"
    code_running_pickle(tmp_path / "agent.ckpt.pt", marker)
    with pytest.raises(ValueError, match="is not a genfast rl-flippers checkpoint"):
        train_flippers(tmp_path / "agent.safetensors", FlippersConfig(games=10), **QUIET)
    assert not marker.exists()


# --------------------------------------------------------------------------------------- training

class Killed(Exception):
    pass


@needs_native
def test_resume_after_a_kill_is_bit_identical(tmp_path):
    kw = dict(games=2000, eval_every=250, checkpoint_every=500)
    straight = train_flippers(tmp_path / "a" / "f.safetensors", FlippersConfig(**kw), **QUIET)

    def kill_at_750(games, info):
        if games == 750:
            raise Killed

    with pytest.raises(Killed):
        train_flippers(tmp_path / "b" / "f.safetensors", FlippersConfig(**kw), callback=kill_at_750, **QUIET)
    assert not (tmp_path / "b" / "f.safetensors").exists()
    ckpt = torch.load(tmp_path / "b" / "f.ckpt.pt", weights_only=True)
    assert ckpt["step"] == 500 and ckpt["kind"] == "rl-flippers"
    resumed = train_flippers(tmp_path / "b" / "f.safetensors", FlippersConfig(**kw), **QUIET)
    assert resumed.start_step == 500 and resumed.steps == 2000
    assert torch.equal(resumed.info["tables"], straight.info["tables"])                 # bitwise
    assert resumed.history == straight.history
    assert np.array_equal(load_agent(tmp_path / "b" / "f.safetensors").q,
                          load_agent(tmp_path / "a" / "f.safetensors").q)
    # a different configuration does not silently continue someone else's checkpoint
    with pytest.raises(ValueError, match="different configuration .*alpha: 0.5 -> 0.3"):
        train_flippers(tmp_path / "b" / "f.safetensors", FlippersConfig(**{**kw, "games": 3000}, alpha=0.3), **QUIET)
    # more games continue the same run (the schedules stretch to the new length)
    longer = train_flippers(tmp_path / "b" / "f.safetensors", FlippersConfig(**{**kw, "games": 2500}), **QUIET)
    assert longer.start_step == 2000 and longer.steps == 2500
    with pytest.raises(ValueError, match="has played 2500 games, more than games = 1000"):
        train_flippers(tmp_path / "b" / "f.safetensors", FlippersConfig(**{**kw, "games": 1000}), **QUIET)


@needs_native
def test_ctrl_c_checkpoints_the_last_chunk_and_resumes(tmp_path):
    config = TicTacToeConfig(games=30_000, eval_every=10_000, eval_games=50, final_games=50, checkpoint_every=0)
    straight = train_tictactoe(tmp_path / "a.safetensors", config, **QUIET)

    def interrupt(games, info):
        if games == 20_000:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        train_tictactoe(tmp_path / "b.safetensors", config, callback=interrupt, **QUIET)
    assert info.value.step == 20_000 and torch.load(info.value.checkpoint, weights_only=True)["step"] == 20_000
    resumed = train_tictactoe(tmp_path / "b.safetensors", config, **QUIET)
    assert resumed.start_step == 20_000
    assert torch.equal(resumed.info["tables"], straight.info["tables"])


@needs_native
def test_curves_and_several_runs(tmp_path):
    out = tmp_path / "t.safetensors"
    result = train_tictactoe(out, TicTacToeConfig(games=20_000, runs=3, seed=4, eval_every=5_000, eval_games=50,
                                                  final_games=100), curve=tmp_path / "c.png", **QUIET)
    payload = json.loads((tmp_path / "c.json").read_text())
    assert [r["games"] for r in payload["records"]] == [g for g in (5000, 10000, 15000, 20000) for _ in range(3)]
    assert [r["run"] for r in payload["records"][:3]] == [0, 1, 2]
    assert payload["best_run"] == result.info["best_run"] and len(payload["final"]) == 3
    scores = [f["perfect_as_x_loss"] + f["perfect_as_o_loss"] for f in payload["final"]]
    assert scores[result.info["best_run"]] == min(scores)
    assert np.array_equal(load_agent(out).values, result.info["tables"][result.info["best_run"]].numpy())
    with Image.open(tmp_path / "c.png") as im:
        assert im.format == "PNG" and im.width > 600
    # each run is the run of its seed alone
    alone = train_tictactoe(tmp_path / "one.safetensors", TicTacToeConfig(games=20_000, seed=5, eval_every=20_000,
                                                                          eval_games=10, final_games=10), **QUIET)
    assert torch.equal(alone.info["tables"][0], result.info["tables"][1])
    metrics_lines = (tmp_path / "t.metrics.jsonl").read_text().splitlines()
    assert json.loads(metrics_lines[0])["step"] == 5000 and "train_draws" in json.loads(metrics_lines[0])


@needs_native
def test_other_opponents(tmp_path, ttt):
    perfect = train_tictactoe(tmp_path / "p.safetensors", TicTacToeConfig(games=20_000, opponent="perfect",
                                                                          eval_every=20_000, final_games=200), **QUIET)
    assert perfect.info["final"]["perfect_as_x_loss"] + perfect.info["final"]["perfect_as_o_loss"] < 0.5
    fixed = train_tictactoe(tmp_path / "f.safetensors", TicTacToeConfig(games=5_000, opponent=str(ttt.output),
                                                                        side="o", eval_every=5_000, final_games=50),
                            **QUIET)
    assert fixed.steps == 5_000
    with pytest.raises(ValueError, match="is the opponent file"):
        train_tictactoe(ttt.output, TicTacToeConfig(games=10, opponent=str(ttt.output)), **QUIET)
    with pytest.raises(FileNotFoundError, match="opponent: no such file"):
        train_tictactoe(tmp_path / "x.safetensors", TicTacToeConfig(games=10, opponent="nobody.safetensors"), **QUIET)


def test_bad_settings_are_named(tmp_path):
    out = tmp_path / "a.safetensors"
    for config, msg in [(TicTacToeConfig(games=0), "games: expected an integer >= 1"),
                        (TicTacToeConfig(alpha=1.5), "alpha: expected a number <= 1.0"),
                        (TicTacToeConfig(epsilon_end=-0.1), "epsilon_end: must be non-negative"),
                        (TicTacToeConfig(opponent="smart"), "opponent: expected one of self, random, perfect"),
                        (TicTacToeConfig(side="both"), "side: expected one of x, o, alternate"),
                        (TicTacToeConfig(runs=0), "runs: expected an integer in"),
                        (FlippersConfig(gamma=1.2), "gamma: expected a number <= 1.0"),
                        (FlippersConfig(max_moves=0), "max_moves: expected an integer >= 1")]:
        train = train_tictactoe if isinstance(config, TicTacToeConfig) else train_flippers
        with pytest.raises(ValueError, match=msg):
            train(out, config, **QUIET)
    with pytest.raises(ValueError, match="out: expected a path ending in .safetensors"):
        train_flippers(tmp_path / "a.npz", FlippersConfig(games=10), **QUIET)
    with pytest.raises(ValueError, match="is the checkpoint file"):
        train_flippers(out, FlippersConfig(games=10), checkpoint=out, **QUIET)
