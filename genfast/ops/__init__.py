"""genfast ops: each a native kernel (csrc/<op>/) with a pure-PyTorch twin (genfast/reference/).

Every op takes impl="auto" | "native" | "reference"; see genfast._native.
"""

from genfast.ops.gram import gram_matrix, style_loss
from genfast.ops.instance_norm import conditional_instance_norm, instance_norm
from genfast.ops.lstm_sample import lstm_sample
from genfast.ops.minibatch_stddev import minibatch_stddev
from genfast.ops.rl import flippers_q, tictactoe_td
from genfast.ops.stem_conv2d import stem_conv2d, stem_conv_transpose2d
from genfast.ops.gram import NATIVE as _GRAM
from genfast.ops.instance_norm import NATIVE as _INSTANCE_NORM
from genfast.ops.lstm_sample import NATIVE as _LSTM_SAMPLE
from genfast.ops.minibatch_stddev import NATIVE as _MINIBATCH_STDDEV
from genfast.ops.rl import NATIVE as _RL
from genfast.ops.stem_conv2d import NATIVE as _STEM_CONV2D

#: every public op -> the registered native ops it runs: the one list `genfast info` and the
#: benchmarks read (each ops module declares its own part as NATIVE)
NATIVE_OPS: dict[str, tuple[str, ...]] = {**_GRAM, **_INSTANCE_NORM, **_LSTM_SAMPLE, **_MINIBATCH_STDDEV, **_RL,
                                      **_STEM_CONV2D}

__all__ = ["gram_matrix", "style_loss", "minibatch_stddev", "instance_norm", "conditional_instance_norm", "lstm_sample",
           "tictactoe_td", "flippers_q", "stem_conv2d", "stem_conv_transpose2d"]
