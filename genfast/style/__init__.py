"""Neural style transfer: optimisation-based (Gatys et al.), with its losses and colour control, and
feed-forward stylizers (TransformerNet, the multi-style MultiStyleNet)."""

from genfast.style import color, losses
from genfast.style.fast import stylize_images
from genfast.style.gatys import Objective, StylizeInterrupted, StylizeResult, stylize
from genfast.style.train import TrainingInterrupted, TrainResult, train_stylizer
from genfast.style.video import VideoDecodeError, VideoReport, flicker, stylize_video
from genfast.style.transformer_net import MultiStyleNet, TransformerNet, load_stylizer, save_stylizer

__all__ = ["stylize", "StylizeResult", "StylizeInterrupted", "Objective", "losses", "color",
           "TransformerNet", "MultiStyleNet", "load_stylizer", "save_stylizer", "train_stylizer", "TrainResult",
           "TrainingInterrupted", "stylize_images",
           "stylize_video", "VideoReport", "VideoDecodeError", "flicker"]
