"""Pure-PyTorch reference twins of every native op: the fallback path and the test oracle.

One module per op, named like the op: genfast.reference.gram, genfast.reference.instance_norm,
genfast.reference.minibatch_stddev.
Written for clarity, not speed. float16/bfloat16 inputs are computed in float32.
"""

from genfast.reference import gram, instance_norm, minibatch_stddev
from genfast.reference.gram import gram_matrix, style_loss

__all__ = ["gram", "instance_norm", "minibatch_stddev", "gram_matrix", "style_loss"]
