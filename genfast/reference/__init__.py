"""Pure-PyTorch reference twins of every native op: the fallback path and the test oracle.

Written for clarity, not speed. float16/bfloat16 inputs are computed in float32.
"""

from genfast.reference.gram import gram_matrix, style_loss
from genfast.reference.instance_norm import conditional_instance_norm, instance_norm

__all__ = ["gram_matrix", "style_loss", "instance_norm", "conditional_instance_norm"]
