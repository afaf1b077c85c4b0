"""Training the tabular agents with the native self-play engine (genfast.ops.tictactoe_td / flippers_q).

    result = train_tictactoe("ttt.safetensors", TicTacToeConfig(games=200_000))
    result = train_flippers("flippers.safetensors", FlippersConfig(games=10_000))

The games are played in chunks by one engine call each (all `runs` at once, spread over the cores);
between chunks the loop logs the training games' results, evaluates every run against the exact
oracles every `eval_every` games (the learning curve, genfast.rl.metrics) and checkpoints. The
engines' random numbers are counted by game, so a run cut into chunks, or stopped and resumed from
its checkpoint, gives bit for bit the tables of one uninterrupted call.

What every genfast training run guarantees (genfast/training): the final agent as safetensors with
its hyperparameters in the header; a checkpoint `<stem>.ckpt.pt` beside it (the tables, the games
played, the curve so far), atomic and read back with weights_only=True; a resume with other settings
refused with the differing settings named; Ctrl-C checkpoints and exits cleanly; metrics to
`<stem>.metrics.jsonl` (and TensorBoard). The learning curve goes to `<stem>.curve.json` and a PNG.
With runs > 1 the runs take seeds seed, seed + 1, ...; the curve shows them all and the agent saved
is the best run by its final evaluation (which one is in the result and the file's header).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from genfast import io, ops
from genfast.checks import ArgumentError, check_choice, check_int, check_number
from genfast.rl import boards, curves, metrics, oracles
from genfast.rl.learners import FLIPPERS_KIND, TICTACTOE_KIND, QLearner, TDValueLearner, load_agent
from genfast.training import (Checkpoint, MetricsLog, TrainResult, checkpoint, checkpoint_on_interrupt,
                              deferred_interrupt, metrics as metrics_log, postfix, progress_bar)

CHECKPOINT_VERSION = 1
OPPONENTS = ("self", "random", "perfect")      # or the path of a trained agent
SIDES = ("x", "o", "alternate")


def _unit(value, name: str) -> float:
    return check_number(value, name, high=1.0)


@dataclass
class TicTacToeConfig:
    games: int = 200_000
    alpha: float = 0.5                 # step size at the first game ...
    alpha_end: float | None = 0.01     # ... going linearly to this at the last (None: constant)
    epsilon: float = 0.2               # the share of exploratory moves (and its end, as for alpha)
    epsilon_end: float | None = None
    opponent: str = "self"             # "self" | "random" | "perfect" | the path of a trained agent
    side: str = "alternate"            # the learner's side against another opponent: "x" | "o" | "alternate"
    draw_value: float = 0.5            # the value of a drawn board (wins are 1, losses 0)
    symmetry: bool = False             # symmetric boards share one table entry
    seed: int = 0
    runs: int = 1                      # independent runs (seeds seed, seed + 1, ...), in one engine call
    eval_every: int = 10_000           # games between the learning curve's points
    eval_games: int = 200              # games per opponent and side at each point
    final_games: int = 1000            # ... and in the final evaluation
    checkpoint_every: int = 50_000

    def check(self) -> "TicTacToeConfig":
        _check_common(self)
        _unit(self.draw_value, "draw_value")
        if self.opponent not in OPPONENTS and not Path(str(self.opponent)).suffix:
            raise ArgumentError("opponent", f"expected one of {', '.join(OPPONENTS)} or the path of a trained "
                                            f"tic-tac-toe agent (.safetensors), got {self.opponent!r}")
        check_choice(self.side, "side", SIDES)
        return self

    def run_settings(self) -> dict:
        """What a resumed run must share (how long, how often to evaluate or checkpoint may change)."""
        return {k: v for k, v in asdict(self).items() if k not in _FREE}


@dataclass
class FlippersConfig:
    games: int = 10_000
    alpha: float = 0.5
    alpha_end: float | None = None
    epsilon: float = 1.0               # from exploring every move at first ...
    epsilon_end: float | None = 0.1    # ... to ten per cent at the last game
    gamma: float = 0.9                 # the discount: a goal n flips away is worth gamma ** (n - 1)
    goal_reward: float = 1.0
    move_reward: float = 0.0
    max_moves: int = 100               # a game is cut after this many flips
    symmetry: bool = False
    seed: int = 0
    runs: int = 1
    eval_every: int = 500
    checkpoint_every: int = 2_000

    def check(self) -> "FlippersConfig":
        _check_common(self)
        _unit(self.gamma, "gamma")
        check_number(self.goal_reward, "goal_reward", low=None)
        check_number(self.move_reward, "move_reward", low=None)
        check_int(self.max_moves, "max_moves", 1)
        return self

    def run_settings(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in _FREE}


_FREE = ("games", "eval_every", "eval_games", "final_games", "checkpoint_every")


def _check_common(config) -> None:
    """The settings both games have: length, schedules, seed, runs, evaluation and checkpoints."""
    check_int(config.games, "games", 1)
    for name in ("alpha", "epsilon"):
        _unit(getattr(config, name), name)
        if getattr(config, f"{name}_end") is not None:
            _unit(getattr(config, f"{name}_end"), f"{name}_end")
    check_int(config.seed, "seed", 0)
    check_int(config.runs, "runs", 1, 4096)
    check_int(config.eval_every, "eval_every", 1)
    check_int(config.checkpoint_every, "checkpoint_every", 0)
    for name in ("eval_games", "final_games"):
        if hasattr(config, name):
            check_int(getattr(config, name), name, 1)


def _schedule(start: float, end: float | None) -> tuple[float, float]:
    return (start, start if end is None else end)


# ------------------------------------------------------------------------------------- the games

class _TicTacToe:
    """What the loop needs to know about tic-tac-toe: the engine call, the evaluation, the learner."""

    kind, name = TICTACTOE_KIND, "tic-tac-toe"

    def __init__(self, config: TicTacToeConfig, impl: str):
        self.config, self.impl = config, impl
        self.index_map = boards.tictactoe_index_map(config.symmetry)
        self.outcomes = boards.outcome_table()
        self.opponent, self.opponent_values, self.opponent_digest = "self", None, None
        if config.opponent == "random":
            self.opponent = "random"
        elif config.opponent == "perfect":
            self.opponent, self.opponent_values = "table", oracles.tictactoe().afterstate_values()
        elif config.opponent != "self":
            agent = load_agent(config.opponent, kind=TICTACTOE_KIND, name="opponent")
            self.opponent, self.opponent_values = "table", agent.table_by_code()
            self.opponent_digest = hashlib.sha256(self.opponent_values.tobytes()).hexdigest()[:16]

    def initial(self) -> np.ndarray:
        return TDValueLearner.initial_table(self.config.draw_value, self.config.symmetry)

    def play(self, tables, first_game: int, games: int, total: int):
        c = self.config
        return ops.tictactoe_td(tables, self.index_map, self.outcomes, c.seed, alpha=_schedule(c.alpha, c.alpha_end),
                                epsilon=_schedule(c.epsilon, c.epsilon_end), games=games, opponent=self.opponent,
                                opponent_values=self.opponent_values, side=c.side, first_game=first_game,
                                total_games=total, impl=self.impl)

    @staticmethod
    def game_stats(stats) -> dict:
        x, o, d = (int(v) for v in stats)
        n = max(1, x + o + d)
        return {"train_x_wins": x / n, "train_o_wins": o / n, "train_draws": d / n}

    def learner(self, table) -> TDValueLearner:
        c = self.config
        return TDValueLearner(table, symmetry=c.symmetry, draw_value=c.draw_value)

    def evaluate(self, table, run: int, *, final: bool) -> dict:
        """The evaluation at a curve point (eval_games games a match-up) or the final one (final_games)."""
        c = self.config
        return metrics.evaluate_tictactoe(self.learner(table), games=c.final_games if final else c.eval_games,
                                          seed=c.seed + run)

    @staticmethod
    def score(report: dict) -> tuple:
        """Smaller is better: losses to perfect play, then to random, then fewer optimal moves."""
        return (report["perfect_as_x_loss"] + report["perfect_as_o_loss"],
                report["random_as_x_loss"] + report["random_as_o_loss"], -report["random_as_x_win"],
                -report["optimal_move_share"])

    targets = staticmethod(metrics.tictactoe_targets)

    @staticmethod
    def summary(report: dict) -> dict:
        return {"vs perfect loss": max(report["perfect_as_x_loss"], report["perfect_as_o_loss"]),
                "vs random X win": report["random_as_x_win"], "optimal": report["optimal_move_share"]}

    def settings(self) -> dict:
        return {"opponent_table": self.opponent_digest}


class _Flippers:
    kind, name = FLIPPERS_KIND, "Flippers"

    def __init__(self, config: FlippersConfig, impl: str):
        self.config, self.impl = config, impl
        self.index_map = boards.flippers_index_map(config.symmetry)
        self.goals = boards.goal_mask()

    def initial(self) -> np.ndarray:
        return np.zeros(boards.BOARDS * boards.CELLS)

    def play(self, tables, first_game: int, games: int, total: int):
        c = self.config
        return ops.flippers_q(tables, self.index_map, self.goals, c.seed, alpha=_schedule(c.alpha, c.alpha_end),
                              epsilon=_schedule(c.epsilon, c.epsilon_end), gamma=c.gamma, games=games,
                              max_moves=c.max_moves, goal_reward=c.goal_reward, move_reward=c.move_reward,
                              first_game=first_game, total_games=total, impl=self.impl)

    @staticmethod
    def game_stats(stats) -> dict:
        solved, cut, moves = (int(v) for v in stats)
        return {"train_solved": solved / max(1, solved + cut), "train_moves": moves / max(1, solved)}

    def learner(self, table) -> QLearner:
        return QLearner(table, symmetry=self.config.symmetry)

    def evaluate(self, table, run: int, *, final: bool) -> dict:
        return metrics.evaluate_flippers(self.learner(table))

    @staticmethod
    def score(report: dict) -> tuple:
        return (-report["optimal_share"], report["mean_excess_moves"])

    targets = staticmethod(metrics.flippers_targets)

    @staticmethod
    def summary(report: dict) -> dict:
        return {"optimal": report["optimal_share"], "excess": report["mean_excess_moves"]}

    def settings(self) -> dict:
        return {}


# -------------------------------------------------------------------------------------- the loop

def train_tictactoe(out, config: TicTacToeConfig | None = None, **kwargs) -> TrainResult:
    """Train a TDValueLearner and write it to `out` (.safetensors). Keyword arguments: resume=True,
    progress=True, checkpoint=None (default `<stem>.ckpt.pt`), curve=None (the PNG; default
    `<stem>.curve.png`), log_every=None (default eval_every), log_dir=None, callback=None
    (callback(games, info) after every chunk), impl="auto"."""
    config = (config or TicTacToeConfig()).check()
    return _train(_TicTacToe, config, out, **kwargs)


def train_flippers(out, config: FlippersConfig | None = None, **kwargs) -> TrainResult:
    """Train a QLearner on Flippers and write it to `out`; the keyword arguments of train_tictactoe."""
    config = (config or FlippersConfig()).check()
    return _train(_Flippers, config, out, **kwargs)


def curve_paths(out, curve=None) -> tuple[Path, Path]:
    """(PNG, JSON) of the learning curve: `curve` (or `<stem>.curve.png`) and the same with .json."""
    png = Path(curve) if curve is not None else Path(out).with_name(Path(out).stem + ".curve.png")
    return png, png.with_suffix(".json")


def _train(game_cls, config, out, *, resume: bool = True, progress: bool = True, checkpoint=None, curve=None,
           log_every: int | None = None, log_dir=None, callback=None, impl: str = "auto") -> TrainResult:
    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ArgumentError("out", f"expected a path ending in .safetensors, got {str(out)!r}")
    log_every = config.eval_every if log_every is None else check_int(log_every, "log_every", 1)
    ckpt_path = Path(checkpoint) if checkpoint is not None else _checkpoint_path(out)
    png, js = curve_paths(out, curve)
    if png.suffix.lower() != ".png":
        raise ArgumentError("curve", f"expected a .png path, got {str(png)!r}")
    written = {"out": out, "checkpoint": ckpt_path, "curve": png, "curve_json": js}
    for name, path in written.items():
        others = {k: v for k, v in written.items() if k != name}
        if getattr(config, "opponent", None) not in (None, *OPPONENTS):
            others["opponent"] = config.opponent
        io.check_output(path, others, name=name)
    game = game_cls(config, impl)
    runs, total = config.runs, config.games

    settings = {**config.run_settings(), **game.settings()}
    ckpt = Checkpoint(ckpt_path, kind=game.kind, config=settings, version=CHECKPOINT_VERSION)
    tables = torch.from_numpy(np.stack([game.initial()] * runs))
    played, records, stats = 0, [], torch.zeros(runs, 3, dtype=torch.int64)
    state = ckpt.resume(models={}) if resume else None
    if state:
        extra = state["extra"]
        played, tables, records = int(state["step"]), extra["tables"].clone(), list(extra["records"])
    start = played
    if played > total:
        raise ArgumentError("games", f"the checkpoint {str(ckpt_path)!r} has played {played} games, more than "
                                     f"games = {total}; ask for more games, or pass --no-resume")

    def save_checkpoint(at: int):
        return ckpt.save(at, models={}, tables=tables, records=records)

    def boundary(g: int) -> int:
        nxt = [total] + [(g // k + 1) * k for k in (log_every, config.eval_every, config.checkpoint_every) if k]
        return min(nxt)

    bar = progress_bar(total, initial=played, desc=f"{game.name} games", unit="game", enabled=progress)
    log = MetricsLog(metrics_log.default_path(out), log_dir=log_dir, start_step=played)
    with bar, log, checkpoint_on_interrupt(lambda: (save_checkpoint(played), played)):   # Ctrl-C: checkpoint, stop
        while played < total:
            nxt = boundary(played)
            chunk = nxt - played
            new_tables, new_stats = game.play(tables, played, chunk, total)
            with deferred_interrupt():          # the tables and the count of games change together
                tables, played = new_tables, nxt
                stats += new_stats
            bar.update(chunk)
            if played % log_every == 0 or played == total:
                log.log(played, **game.game_stats(stats.sum(0)))
                stats.zero_()
            if played % config.eval_every == 0 or played == total:
                point = [game.evaluate(tables[run].numpy(), run, final=False) for run in range(runs)]
                records += [{"games": played, "run": run, **report} for run, report in enumerate(point)]
                postfix(bar, {k: float(np.mean([game.summary(r)[k] for r in point])) for k in game.summary(point[0])})
                log.log(played, **{k: float(np.mean([r[k] for r in point])) for k in point[0]})   # mean over runs
            if config.checkpoint_every and played % config.checkpoint_every == 0 and played < total:
                save_checkpoint(played)
            if callback is not None:
                callback(played, {"tables": tables})

    save_checkpoint(played)
    finals = [game.evaluate(tables[run].numpy(), run, final=True) for run in range(runs)]
    best = min(range(runs), key=lambda r: game.score(finals[r]))
    learner = game.learner(tables[best].numpy())
    learner.config = {"training": asdict(config), "run": best, "final": finals[best],
                      "targets": game.targets(finals[best])}
    learner.save(out)
    payload = {"game": game.name, "config": asdict(config), "records": records, "final": finals, "best_run": best,
               "targets": game.targets(finals[best])}
    io.write_json(js, payload)
    curves.plot(payload, png)
    return TrainResult(model=learner, output=out, checkpoint=ckpt_path, steps=played, start_step=start,
                       seconds=time.perf_counter() - t0, history=records, metrics=metrics_log.default_path(out),
                       info={"final": finals[best], "finals": finals, "best_run": best, "curve": png, "curve_json": js,
                             "targets": game.targets(finals[best]), "tables": tables})


def _checkpoint_path(out) -> Path:
    return checkpoint.default_path(out)


__all__ = ["TicTacToeConfig", "FlippersConfig", "train_tictactoe", "train_flippers", "curve_paths"]
