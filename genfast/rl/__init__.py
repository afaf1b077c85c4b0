"""Tabular reinforcement learning: tic-tac-toe by TD(0) (Sutton & Barto, ch. 1) and Flippers by
Q-learning, trained by a native self-play engine and judged against exact oracles.

    boards.py     the rules, board codes <-> table indices, symmetries, PettingZoo/Gymnasium observations
    envs.py       TicTacToeEnv (PettingZoo AEC, like tictactoe_v3), FlippersEnv (Gymnasium, genfast/Flippers-v0)
    learners.py   TDValueLearner, QLearner (plain float64 tables, safetensors files), load_agent
    oracles.py    minimax over the 5 478 reachable positions; the fewest flips from each of the 512 boards
    train.py      train_tictactoe, train_flippers: the loop on genfast.ops.tictactoe_td / flippers_q
    metrics.py    evaluation against random and perfect play, optimal-move shares, excess flips
    curves.py     the learning curves as PNG
    play.py       a person against the agent in the terminal; the agent's Flippers solutions
    cli.py        genfast rl tictactoe|flippers train|play|eval
"""

from genfast.rl import boards, oracles
from genfast.rl.envs import FlippersEnv, TicTacToeEnv, tictactoe_env
from genfast.rl.learners import QLearner, TDValueLearner, load_agent
from genfast.rl.metrics import evaluate_flippers, evaluate_tictactoe
from genfast.rl.train import FlippersConfig, TicTacToeConfig, train_flippers, train_tictactoe
from genfast.training import TrainingInterrupted, TrainResult

__all__ = ["boards", "oracles", "TicTacToeEnv", "tictactoe_env", "FlippersEnv", "TDValueLearner", "QLearner",
           "load_agent", "evaluate_tictactoe", "evaluate_flippers", "TicTacToeConfig", "FlippersConfig",
           "train_tictactoe", "train_flippers", "TrainingInterrupted", "TrainResult"]
