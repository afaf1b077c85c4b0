"""`genfast rl tictactoe|flippers train|play|eval`: the commands, what they print and write, play
surviving anything a person types, and bad options or files answered in one line with exit code 2."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import code_running_pickle

from genfast.cli import main
from genfast.rl import QLearner, TDValueLearner, load_agent, play

ROOT = Path(__file__).resolve().parents[2]


def genfast(*argv, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genfast", *map(str, argv)], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                                                                    "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    """A tic-tac-toe agent and a Flippers agent trained from the command line (small budgets)."""
    root = tmp_path_factory.mktemp("cli")
    assert main(["rl", "tictactoe", "train", "--out", str(root / "ttt.safetensors"), "--games", "40000",
                 "--eval-every", "20000", "--quiet"]) == 0
    assert main(["rl", "flippers", "train", "--out", str(root / "fl.safetensors"), "--quiet"]) == 0
    return root / "ttt.safetensors", root / "fl.safetensors"


def test_train_writes_the_agent_the_curve_and_says_so(agents, capsys):
    ttt, fl = agents
    for out in (ttt, fl):
        stem = out.with_suffix("")
        for path in (out, Path(f"{stem}.ckpt.pt"), Path(f"{stem}.curve.png"), Path(f"{stem}.curve.json"),
                     Path(f"{stem}.metrics.jsonl")):
            assert path.is_file(), path
    assert isinstance(load_agent(ttt), TDValueLearner) and isinstance(load_agent(fl), QLearner)
    curve = json.loads(Path(f"{ttt.with_suffix('')}.curve.json").read_text())
    assert [r["games"] for r in curve["records"]] == [20000, 40000] and curve["config"]["alpha"] == 0.5
    # a second identical command resumes the finished run: nothing more to play
    assert main(["rl", "flippers", "train", "--out", str(fl), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {fl}: 10000 games (resumed at game 10000)" in printed
    assert "targets: solves every board in fewest moves: yes" in printed


def test_eval_prints_the_report_and_writes_json(agents, tmp_path, capsys):
    ttt, fl = agents
    assert main(["rl", "tictactoe", "eval", str(ttt), "--games", "300", "--json", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "perfect   X" in printed and "minimax-optimal greedy moves:" in printed
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["eval_games"] == 300 and report["targets"]["never_loses_to_perfect_play"] in (True, False)
    assert main(["rl", "flippers", "eval", str(fl)]) == 0
    assert "in the fewest flips 100.0%" in capsys.readouterr().out


def test_tictactoe_play_survives_anything_typed(agents):
    """Garbage, taken cells, numbers out of range, blank lines, unicode digits, then a full game and
    'n'; and a second session cut by the end of input in the middle of a game."""
    ttt, _ = agents
    garbage = ["", "   ", "x", "0", "10", "-1", "1.5", "\u0661", "\u00b2", "5 5", "9" * 400, "\x1b[A", "5", "5"]
    run = genfast("rl", "tictactoe", "play", ttt, stdin="\n".join(garbage + ["1", "2", "3", "4", "6", "7", "8",
                                                                               "9", "n"]) + "\n")
    assert run.returncode == 0, run.stderr
    assert "'x' is not a cell: type a number 1-9" in run.stdout and "'10' is not a cell" in run.stdout
    assert "cell 5 is taken by X" in run.stdout and "type the number of a free cell" in run.stdout
    assert "final score: you" in run.stdout and run.stderr == ""
    cut = genfast("rl", "tictactoe", "play", ttt, "--first", "agent", "--show-values", stdin="5\n")
    assert cut.returncode == 0 and "agent plays" in cut.stdout and "final score: you 0, agent 0, draws 0" in cut.stdout
    assert "its chance to win, a draw counting 0.5" in cut.stdout


def test_play_functions_with_typed_lines(agents):
    ttt, fl = agents
    agent = load_agent(ttt)
    lines = iter(["q"])
    seen = []
    assert play.play_tictactoe(agent, input_fn=lambda prompt: next(lines), print_fn=seen.append) == \
        {"human": 0, "agent": 0, "draw": 0}
    # the agent against itself through the person's prompt: every game ends, the tally adds up
    moves = []

    def person(prompt):
        if prompt.startswith("play again"):
            return "y"
        free = [int(c) for c in prompt.split("(")[1].split(")")[0].split(", ")]
        moves.append(free[0])
        return str(free[0])

    tally = play.play_tictactoe(agent, first="human", input_fn=person, print_fn=lambda *a: None, max_games=3)
    assert sum(tally.values()) == 3 and tally["human"] == 0                 # the first-free-cell player never wins
    shown = []
    flagent = load_agent(fl)
    answers = iter(["nonsense", "", "000000011", "512", "q"])
    assert play.play_flippers(flagent, input_fn=lambda p: next(answers), print_fn=shown.append,
                              rng=np.random.default_rng(0)) == 2
    text = "\n".join(shown)
    assert "expected nine tiles" in text and "goal in 1 flips (the fewest possible)" in text
    assert "expected a flippers board in [0, 511], got 512" in text


def run_main(argv, capsys, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    """`genfast ARGV` in this process: (exit code, stdout, stderr); stdin feeds input()."""
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:          # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_flippers_play_shows_the_solution_with_q_values(agents, capsys, monkeypatch):
    _, fl = agents
    code, out, err = run_main(["rl", "flippers", "play", fl, "--board", "101010101"], capsys)
    assert code == 0, err
    assert out.count("<- flip") == 4 and "goal in 4 flips (the fewest possible)" in out
    assert "\x1b[" not in out                                         # no colours when not a terminal
    code, out, _ = run_main(["rl", "flippers", "play", fl, "--board", "0", "--color", "always"], capsys)
    assert "\x1b[32m" in out
    code, out, _ = run_main(["rl", "flippers", "play", fl], capsys, stdin="junk\n\n", monkeypatch=monkeypatch)
    assert code == 0 and "expected nine tiles" in out and out.count("start (fewest flips") == 1


def test_q_bars_by_hand():
    lines = play.q_bars(np.array([0.0, 1.0, 0.5, 0, 0, 0, 0, 0, 0.25]), 1, width=10)
    assert lines[1].endswith("1.0000 <- flip") and lines[1].count("#") + lines[1].count("\u2588") == 10
    assert lines[0].count("#") + lines[0].count("\u2588") == 2             # the smallest: a sliver (1/5 of the width)


def test_bad_options_and_files_exit_2_with_one_line(agents, tmp_path, capsys):
    ttt, fl = agents
    cases = [(["rl", "tictactoe", "train", "--out", tmp_path / "a.safetensors", "--games", "0"],
              "argument --games: expected a positive integer, got '0'"),
             (["rl", "tictactoe", "train", "--out", tmp_path / "a.safetensors", "--alpha", "2"],
              "argument --alpha: expected a number >= 0 and <= 1, got '2'"),
             (["rl", "tictactoe", "train", "--out", tmp_path / "a.safetensors", "--opponent", "smart"],
              "--opponent: expected one of self, random, perfect"),
             (["rl", "tictactoe", "train", "--out", tmp_path / "a.pt"],
              "--out: expected a path ending in .safetensors"),
             (["rl", "tictactoe", "train", "--out", ttt, "--opponent", ttt], "is the opponent file"),
             (["rl", "tictactoe", "play", fl], "AGENT: "),
             (["rl", "flippers", "eval", ttt], "is a tic-tac-toe agent, not a Flippers agent"),
             (["rl", "tictactoe", "eval", tmp_path / "missing.safetensors"], "AGENT: no such file"),
             (["rl", "flippers", "play", fl, "--board", "2222"], "--board: expected a flippers board in [0, 511]"),
             (["rl", "tictactoe", "eval", ttt, "--json", ttt], "--json: "),
             (["rl", "flippers", "train", "--out", tmp_path / "f.safetensors", "--curve", tmp_path / "c.jpg"],
              "--curve: expected a .png path")]
    for argv, message in cases:
        code, out, err = run_main(argv, capsys)
        assert code == 2, (argv, out, err)
        assert message in err.strip().splitlines()[-1], (argv, err)          # one line (after argparse's usage)
        assert "Traceback" not in err
    assert run_main(["rl", "flippers", "play", fl, "--board", "12"], capsys)[0] == 0      # board 12 is a fine board


def test_a_code_running_file_is_refused_by_every_command(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = code_running_pickle(tmp_path / "evil.safetensors", marker)
    for verb in (["tictactoe", "play"], ["tictactoe", "eval"], ["flippers", "play"], ["flippers", "eval"]):
        code, _, err = run_main(["rl", *verb, evil], capsys)
        assert code == 2 and "is not a genfast rl agent" in err, err
    code, _, err = run_main(["rl", "tictactoe", "train", "--out", tmp_path / "t.safetensors", "--opponent", evil,
                             "--games", "10"], capsys)
    assert code == 2 and "--opponent: " in err and "is not a genfast rl agent" in err
    assert not marker.exists()


def test_help_lists_the_commands(capsys):
    code, out, _ = run_main(["rl", "--help"], capsys)
    assert code == 0 and "tictactoe" in out and "flippers" in out
    code, out, _ = run_main(["rl", "tictactoe", "train", "--help"], capsys)
    assert "--opponent" in out and "--checkpoint-every" in out and "--device" not in out
    assert "games between checkpoints" in out
