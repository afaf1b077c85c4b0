"""Pure-PyTorch reference twins of every native op: the fallback path and the test oracle.

One module per op, named like the op: genfast.reference.gram, genfast.reference.instance_norm,
genfast.reference.minibatch_stddev, genfast.reference.lstm_sample, genfast.reference.rl (the tabular
RL engines); and efficientnet_lite, the plain feature network that genfast.models.EfficientNetLite0
is checked against.
Written for clarity, not speed. float16/bfloat16 inputs are computed in float32.
"""

from genfast.reference import efficientnet_lite, gram, instance_norm, lstm_sample, minibatch_stddev, rl
from genfast.reference.gram import gram_matrix, style_loss

__all__ = ["gram", "instance_norm", "minibatch_stddev", "lstm_sample", "rl", "efficientnet_lite", "gram_matrix", "style_loss"]
