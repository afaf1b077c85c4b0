"""DeepDream and feature visualisation: what a frozen convnet has learned, as pictures.

    deepdream.py        dream(): octaves, detail re-injection, jitter, guide, tiles; DreamObjective
    losses.py           the objectives (mean square, mean, guide match) and the gradient normalisation
    tiling.py           the gradient a tile at a time, with a halo, on the network's own unit grid
    receptive_field.py  strides, kernels and padding -> each unit's box in the input (used by tiling and patches)
    cli.py              genfast dream run|filters|patches
"""

from genfast.dream import losses, receptive_field, tiling
from genfast.dream.deepdream import DEFAULT_LAYERS, DreamObjective, DreamResult, dream, octave_sizes, reinject_detail

__all__ = ["dream", "DreamResult", "DreamObjective", "DEFAULT_LAYERS", "octave_sizes", "reinject_detail",
           "losses", "tiling", "receptive_field"]
