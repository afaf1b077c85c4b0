"""Neural style transfer: optimisation-based (Gatys et al.) and feed-forward stylizers (TransformerNet,
the multi-style MultiStyleNet), for images and video.

    gatys.py      stylize(): optimise the pixels (Objective: content, style, TV; tiles, scales)
    losses.py     the content, style and TV losses in their conventions; PerceptualLoss (training)
    color.py      colour preservation
    networks.py   TransformerNet, MultiStyleNet; load_stylizer, save_stylizer
    train.py      train_stylizer(): Johnson et al., one or many styles, resumable, data-parallel
    apply.py      stylize_images(), stylize_files(), FrameStylizer: a trained stylizer on images and frames
    video.py      stylize_video(): file to file through PyAV;  live.py: a camera through OpenCV
    smoothing.py  flow-free temporal smoothing;  metrics.py: the flicker measure
    export.py     ONNX export through the plain twin
    cli.py        genfast style transfer|apply|train|video|export-onnx
"""

from genfast.style import color, losses
from genfast.style.apply import stylize_files, stylize_images
from genfast.style.gatys import Objective, StylizeInterrupted, StylizeResult, stylize
from genfast.style.losses import PerceptualLoss
from genfast.style.metrics import flicker
from genfast.style.networks import MultiStyleNet, TransformerNet, load_stylizer, save_stylizer
from genfast.style.smoothing import TemporalSmoother
from genfast.style.train import train_stylizer
from genfast.style.video import VideoDecodeError, VideoInterrupted, VideoReport, stylize_video
from genfast.training import TrainingInterrupted, TrainResult

__all__ = ["stylize", "StylizeResult", "StylizeInterrupted", "Objective", "losses", "color", "PerceptualLoss",
           "TransformerNet", "MultiStyleNet", "load_stylizer", "save_stylizer", "train_stylizer", "TrainResult",
           "TrainingInterrupted", "stylize_images", "stylize_files", "stylize_video", "VideoReport",
           "VideoDecodeError", "VideoInterrupted", "TemporalSmoother", "flicker"]
