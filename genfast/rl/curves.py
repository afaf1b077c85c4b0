"""Learning curves as pictures: the evaluations of a training run (genfast.rl.train) against games.

Tic-tac-toe: win and loss shares against a random player and against perfect play, from each side,
and the share of positions whose greedy move is minimax-optimal. Flippers: the mean excess flips
over the fewest possible and the share of boards solved in the fewest. With several runs, the line
is their mean and the band spans the best and the worst run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genfast import io


def _series(records: list[dict], key: str):
    games = sorted({r["games"] for r in records})
    values = [[r[key] for r in records if r["games"] == g] for g in games]
    return (np.array(games), np.array([np.mean(v) for v in values]), np.array([np.min(v) for v in values]),
            np.array([np.max(v) for v in values]))


def _line(ax, records, key, label, color, style="-"):
    games, mean, low, high = _series(records, key)
    ax.plot(games, mean, style, color=color, label=label, linewidth=1.6)
    if (low != high).any():
        ax.fill_between(games, low, high, color=color, alpha=0.15, linewidth=0)


def plot(payload: dict, path) -> Path:
    """Draw the curve of a training payload ({"game", "config", "records", ...}) as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    records, config = payload["records"], payload["config"]
    runs = config.get("runs", 1)
    if payload["game"] == "tic-tac-toe":
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for ax, opp, title in ((axes[0], "random", "against a random player"),
                               (axes[1], "perfect", "against perfect play")):
            first = "win" if opp == "random" else "draw"
            _line(ax, records, f"{opp}_as_x_{first}", f"{first} as X (first)", "tab:green")
            _line(ax, records, f"{opp}_as_o_{first}", f"{first} as O", "tab:green", "--")
            _line(ax, records, f"{opp}_as_x_loss", "loss as X", "tab:red")
            _line(ax, records, f"{opp}_as_o_loss", "loss as O", "tab:red", "--")
            ax.set_title(title)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("share of games")
        _line(axes[2], records, "optimal_move_share", "all positions", "tab:blue")
        _line(axes[2], records, "optimal_move_share_x", "X to move", "tab:purple", "--")
        _line(axes[2], records, "optimal_move_share_o", "O to move", "tab:orange", ":")
        axes[2].set_title("greedy move is minimax-optimal")
        axes[2].set_ylabel("share of the 4 520 positions")
        hyper = (f"opponent {config['opponent']}, alpha {config['alpha']}"
                 + (f"->{config['alpha_end']}" if config.get("alpha_end") is not None else "")
                 + f", epsilon {config['epsilon']}"
                 + (f"->{config['epsilon_end']}" if config.get("epsilon_end") is not None else ""))
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        _line(axes[0], records, "mean_excess_moves", "mean over the 506 boards", "tab:red")
        _line(axes[0], records, "max_excess_moves", "worst board", "tab:red", ":")
        axes[0].set_title("greedy flips beyond the fewest possible")
        axes[0].set_ylabel("flips")
        _line(axes[1], records, "optimal_share", "solved in the fewest flips", "tab:green")
        _line(axes[1], records, "solved_share", "solved", "tab:blue", "--")
        axes[1].set_title("boards the greedy policy solves")
        axes[1].set_ylim(-0.02, 1.02)
        axes[1].set_ylabel("share of boards")
        hyper = (f"alpha {config['alpha']}, epsilon {config['epsilon']}"
                 + (f"->{config['epsilon_end']}" if config.get("epsilon_end") is not None else "")
                 + f", gamma {config['gamma']}")
    games = sorted({r["games"] for r in records})
    for ax in axes:
        if len(games) > 2 and games[-1] >= 20 * games[0]:
            ax.set_xscale("log")           # the early games are where the learning shows
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training games")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    band = f", {runs} runs (line: mean, band: best to worst)" if runs > 1 else ""
    fig.suptitle(f"{payload['game']}: {hyper}{band}", fontsize=10)
    return io.save_figure(fig, path, dpi=100)
