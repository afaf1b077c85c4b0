"""`genfast rl tictactoe|flippers train|play|eval`."""

from __future__ import annotations

from genfast.cli import command, group
from genfast.cli.types import add_training, integer, number, positive_int, unit_interval
from genfast.rl.train import FlippersConfig, TicTacToeConfig

RUNS_HELP = "independent runs (seeds seed, seed+1, ...) trained at once on all cores; the best is saved"


def register(sub) -> None:
    games = group(sub, "rl", help="tabular reinforcement learning: tic-tac-toe by TD(0), Flippers by Q-learning")
    verbs = games.add_parser("tictactoe", help="tic-tac-toe, TD(0) on afterstate values (Sutton & Barto ch. 1)")
    verbs = verbs.add_subparsers(dest="tictactoe_verb", required=True, metavar="VERB")

    t = command(verbs, "train", run_tictactoe_train, help="train an agent with the native self-play engine")
    defaults = _train_options(t, TicTacToeConfig, moves="moves")
    t.add_argument("--opponent", default=defaults.opponent,
                   help="self (both sides learn), random, perfect (minimax), or a trained agent's file")
    t.add_argument("--side", choices=("x", "o", "alternate"), default=defaults.side,
                   help="the learner's side against random, perfect or an agent (default alternate)")
    t.add_argument("--draw-value", type=unit_interval, default=defaults.draw_value,
                   help=f"the value of a draw (wins 1, losses 0; default {defaults.draw_value})")
    t.add_argument("--eval-games", type=positive_int, default=defaults.eval_games,
                   help=f"games per opponent and side at each curve point (default {defaults.eval_games}; "
                        f"{defaults.final_games} at the end)")
    add_training(t, checkpoint_every=defaults.checkpoint_every, log_every=defaults.eval_every, unit="games",
                 device=False)

    p = command(verbs, "play", run_tictactoe_play, help="play against a trained agent in the terminal")
    p.add_argument("agent", help="an agent written by `genfast rl tictactoe train`")
    p.add_argument("--first", choices=("human", "agent"), default="human", help="who moves first, as X")
    p.add_argument("--show-values", action="store_true", help="show the agent's estimates before its moves")

    e = command(verbs, "eval", run_tictactoe_eval, help="judge an agent against random and perfect play")
    e.add_argument("agent")
    e.add_argument("--games", type=positive_int, default=1000, help="games per opponent and side (default 1000)")
    e.add_argument("--seed", type=integer(0), default=0)
    e.add_argument("--json", metavar="PATH", help="also write the report as JSON")

    verbs = games.add_parser("flippers", help="Flippers (solitaire tic-tac-toe of flipping tiles), Q-learning")
    verbs = verbs.add_subparsers(dest="flippers_verb", required=True, metavar="VERB")
    t = command(verbs, "train", run_flippers_train, help="train an agent with the native engine")
    defaults = _train_options(t, FlippersConfig, moves="flips")
    t.add_argument("--gamma", type=unit_interval, default=defaults.gamma,
                   help=f"discount (default {defaults.gamma})")
    t.add_argument("--goal-reward", type=number(None), default=defaults.goal_reward)
    t.add_argument("--move-reward", type=number(None), default=defaults.move_reward,
                   help="reward of every flip (e.g. -1)")
    t.add_argument("--max-moves", type=positive_int, default=defaults.max_moves,
                   help=f"a game is cut after this many flips (default {defaults.max_moves})")
    add_training(t, checkpoint_every=defaults.checkpoint_every, log_every=defaults.eval_every, unit="games",
                 device=False)

    p = command(verbs, "play", run_flippers_play, help="watch the agent solve boards, with its Q-values")
    p.add_argument("agent", help="an agent written by `genfast rl flippers train`")
    p.add_argument("--board", help="nine tiles row by row (1 = dot, e.g. 010010011) or 0-511; default: ask")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--max-moves", type=positive_int, default=20, help="stop a solution after this many flips")

    e = command(verbs, "eval", run_flippers_eval, help="judge an agent on every board against the fewest flips")
    e.add_argument("agent")
    e.add_argument("--json", metavar="PATH", help="also write the report as JSON")


def _train_options(t, config_cls, *, moves: str):
    """The options both games' `train` has, with the defaults of their config dataclass."""
    d = config_cls()
    t.add_argument("--out", required=True, help="the trained agent (.safetensors)")
    t.add_argument("--games", type=positive_int, default=d.games, help=f"training games (default {d.games})")
    t.add_argument("--alpha", type=unit_interval, default=d.alpha, help=f"step size at the first game (default "
                                                                       f"{d.alpha})")
    t.add_argument("--alpha-end", type=unit_interval, default=d.alpha_end,
                   help=f"step size at the last game, linear in between (default {d.alpha_end or 'constant'})")
    t.add_argument("--epsilon", type=unit_interval, default=d.epsilon,
                   help=f"share of exploratory {moves} at the first game (default {d.epsilon})")
    t.add_argument("--epsilon-end", type=unit_interval, default=d.epsilon_end,
                   help=f"... at the last game, linear in between (default {d.epsilon_end or 'constant'})")
    t.add_argument("--symmetry", action="store_true", help="symmetric boards share one table entry")
    t.add_argument("--runs", type=integer(1, 4096), default=d.runs, help=RUNS_HELP)
    t.add_argument("--eval-every", type=positive_int, default=d.eval_every,
                   help=f"games between learning-curve points (default {d.eval_every})")
    t.add_argument("--curve", metavar="PNG", help="the learning curve (default <out stem>.curve.png; JSON beside it)")
    return d


def _train_kwargs(args) -> dict:
    return {"resume": not args.no_resume, "progress": not args.quiet, "checkpoint": args.checkpoint,
            "curve": args.curve, "log_every": args.log_every, "log_dir": args.log_dir}


def _print_trained(result, extra: str) -> None:
    resumed = f" (resumed at game {result.start_step})" if result.start_step else ""
    best = f" (run {result.info['best_run']} of {len(result.info['finals'])})" if len(result.info["finals"]) > 1 else ""
    print(f"wrote {result.output}{best}: {result.steps} games{resumed} in {result.seconds:.1f} s; {extra}")
    print(_targets_line(result.info["targets"]))
    print(f"curve {result.info['curve']} (+ {result.info['curve_json'].name}), checkpoint {result.checkpoint}, "
          f"metrics {result.metrics}")


def run_tictactoe_train(args) -> int:
    from genfast import rl

    config = rl.TicTacToeConfig(games=args.games, alpha=args.alpha, alpha_end=args.alpha_end, epsilon=args.epsilon,
                                epsilon_end=args.epsilon_end, opponent=args.opponent, side=args.side,
                                draw_value=args.draw_value, symmetry=args.symmetry, seed=args.seed, runs=args.runs,
                                eval_every=args.eval_every, eval_games=args.eval_games,
                                checkpoint_every=args.checkpoint_every)
    result = rl.train_tictactoe(args.out, config, **_train_kwargs(args))
    f = result.info["final"]
    _print_trained(result, f"against perfect play it loses {f['perfect_as_x_loss']:.1%} as X and "
                           f"{f['perfect_as_o_loss']:.1%} as O, against random it wins {f['random_as_x_win']:.1%} "
                           f"as X and {f['random_as_o_win']:.1%} as O ({f['eval_games']} games each); "
                           f"optimal moves in {f['optimal_move_share']:.1%} of the positions")
    return 0


def run_flippers_train(args) -> int:
    from genfast import rl

    config = rl.FlippersConfig(games=args.games, alpha=args.alpha, alpha_end=args.alpha_end, epsilon=args.epsilon,
                               epsilon_end=args.epsilon_end, gamma=args.gamma, goal_reward=args.goal_reward,
                               move_reward=args.move_reward, max_moves=args.max_moves, symmetry=args.symmetry,
                               seed=args.seed, runs=args.runs, eval_every=args.eval_every,
                               checkpoint_every=args.checkpoint_every)
    result = rl.train_flippers(args.out, config, **_train_kwargs(args))
    f = result.info["final"]
    _print_trained(result, f"the greedy policy solves {f['optimal_share']:.1%} of the {f['boards']} boards in the "
                           f"fewest flips (mean excess {f['mean_excess_moves']:.3f} flips, unsolved {f['unsolved']})")
    return 0


def run_tictactoe_play(args) -> int:
    from genfast.rl import learners, play

    agent = learners.load_agent(args.agent, kind=learners.TICTACTOE_KIND)
    play.play_tictactoe(agent, first=args.first, show_values=args.show_values)
    return 0


def run_flippers_play(args) -> int:
    from genfast.rl import learners, play

    agent = learners.load_agent(args.agent, kind=learners.FLIPPERS_KIND)
    color = args.color == "always" or (args.color == "auto" and play.use_color())
    play.play_flippers(agent, args.board, color=color, max_moves=args.max_moves)
    return 0


def _targets_line(targets: dict) -> str:
    return "targets: " + ", ".join(f"{k.replace('_', ' ')}: {'yes' if v else 'NO'}" for k, v in targets.items())


def _report_targets(args, report: dict, targets: dict) -> int:
    """The end of `eval`: which targets the agent meets, and the report as JSON with --json."""
    print(_targets_line(targets))
    if args.json:
        from genfast import io

        io.check_output(args.json, {"agent": args.agent}, name="json")
        io.write_json(args.json, {**report, "targets": targets})
        print(f"wrote {args.json}")
    return 0


def run_tictactoe_eval(args) -> int:
    from genfast.rl import learners, metrics

    agent = learners.load_agent(args.agent, kind=learners.TICTACTOE_KIND)
    report = metrics.evaluate_tictactoe(agent, games=args.games, seed=args.seed)
    print(f"{args.agent}: {args.games} games per match-up, the agent greedy")
    print(f"{'opponent':<10}{'agent':<7}{'win':>8}{'draw':>8}{'loss':>8}")
    for opp in metrics.OPPONENTS:
        for side in metrics.SIDES:
            r = [report[f"{opp}_as_{side}_{result}"] for result in ("win", "draw", "loss")]
            print(f"{opp:<10}{side.upper():<7}" + "".join(f"{v:>8.1%}" for v in r))
    print(f"minimax-optimal greedy moves: {report['optimal_move_share']:.2%} of the 4520 positions (X to move "
          f"{report['optimal_move_share_x']:.2%}, O to move {report['optimal_move_share_o']:.2%})")
    return _report_targets(args, report, metrics.tictactoe_targets(report))


def run_flippers_eval(args) -> int:
    from genfast.rl import learners, metrics

    agent = learners.load_agent(args.agent, kind=learners.FLIPPERS_KIND)
    report = metrics.evaluate_flippers(agent)
    print(f"{args.agent}: the greedy policy on the {report['boards']} boards that are not goals")
    print(f"solved {report['solved_share']:.1%}, in the fewest flips {report['optimal_share']:.1%}; excess flips: "
          f"mean {report['mean_excess_moves']:.3f}, worst {report['max_excess_moves']}; unsolved {report['unsolved']}")
    return _report_targets(args, report, metrics.flippers_targets(report))
