"""Tabular RL engines: `python benchmarks/bench_rl.py [--quick] [--json PATH]`.

1. The pure-Python reference twin vs the native engine on the same games (genfast/bench/rl.py's
   cases, timed in alternating rounds in this one process), 2 threads: games/s and the ratio.
2. How the native engine's time grows with the batch of runs (many seeds at once), 1 and 2 threads.
3. What a reference game spends on its counter-based random numbers (Philox in Python).

Part 1's cases are also in the pytest-benchmark suite (`make bench`; see conftest.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from genfast.bench import rl as bench
from genfast.bench.core import format_table, run_cases, time_fn
from genfast.io import write_json
from genfast.reference import rl as ref

OP = "rl"


def test_rl(bench_case, benchmark):
    bench_case(benchmark)


def batch_scaling(threads: int, runs_list, games: dict) -> list[dict]:
    rows = []
    torch.set_num_threads(threads)
    for runs in runs_list:
        for op, make in (("rl_tictactoe_td", bench.tictactoe_call), ("rl_flippers_q", bench.flippers_call)):
            t = time_fn(make(runs, games[op], "native"), torch.device("cpu"), warmup=1, repeat=5)
            rows.append({"op": op, "threads": threads, "runs": runs, "games_per_run": games[op], "seconds": t,
                         "games_per_s": runs * games[op] / t})
    return rows


def philox_share(games: int = 300) -> dict:
    """Seconds per reference game, and per Philox block (a game draws one block per ply)."""
    fn = bench.tictactoe_call(1, games, "reference")
    game_s = statistics.median(_timed(fn) for _ in range(3)) / games
    n = 20_000
    t0 = time.perf_counter()
    for i in range(n):
        ref.draws(1, 1, i, 3)
    block_s = (time.perf_counter() - t0) / n
    return {"reference_s_per_game": game_s, "philox_s_per_block": block_s}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", help="write every number as JSON")
    args = p.parse_args()

    torch.set_num_threads(2)
    shapes = bench.QUICK_SHAPES if args.quick else bench.DEFAULT_SHAPES
    results = run_cases(bench.cases(torch.device("cpu"), shapes), torch.device("cpu"), repeat=3 if args.quick else 5)
    print("1. reference vs native, 2 threads, interleaved rounds")
    print(format_table(results))
    for line in bench.report(torch.device("cpu"), shapes, results):
        print(line)

    runs_list = [1, 2, 4] if args.quick else [1, 2, 4, 8, 16, 64, 256]
    games = {"rl_tictactoe_td": 2_000 if args.quick else 20_000, "rl_flippers_q": 500 if args.quick else 5_000}
    scaling = batch_scaling(1, runs_list, games) + batch_scaling(2, runs_list, games)
    torch.set_num_threads(2)
    print("\n2. native, time against the batch of runs")
    print(f"{'op':<16} {'threads':>7} {'runs':>5} {'games/run':>9} {'ms':>10} {'ms/run':>8} {'games/s':>12}")
    for r in scaling:
        print(f"{r['op']:<16} {r['threads']:>7} {r['runs']:>5} {r['games_per_run']:>9} {1e3 * r['seconds']:>10.2f} "
              f"{1e3 * r['seconds'] / r['runs']:>8.3f} {r['games_per_s']:>12,.0f}")

    share = philox_share(100 if args.quick else 300)
    print(f"\n3. reference: {1e6 * share['reference_s_per_game']:.0f} us per tic-tac-toe game, "
          f"{1e6 * share['philox_s_per_block']:.1f} us per Philox block (~9 blocks a game: "
          f"{100 * 9 * share['philox_s_per_block'] / share['reference_s_per_game']:.0f}% of its time)")
    if args.json:
        write_json(args.json, {"cases": [r.as_dict() for r in results], "scaling": scaling, "reference": share})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
