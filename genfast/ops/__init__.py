"""genfast ops: each a native kernel (csrc/<op>/) with a pure-PyTorch twin (genfast/reference/).

Every op takes impl="auto" | "native" | "reference"; see genfast._native.
"""

from genfast.ops.gram import gram_matrix, style_loss
from genfast.ops.instance_norm import conditional_instance_norm, instance_norm
from genfast.ops.lstm_sample import lstm_sample
from genfast.ops.minibatch_stddev import minibatch_stddev

__all__ = ["gram_matrix", "style_loss", "minibatch_stddev", "instance_norm", "conditional_instance_norm", "lstm_sample"]
