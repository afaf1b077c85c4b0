"""DeepDream and feature visualisation: what a frozen convnet has learned, as pictures.

    deepdream.py        dream(): octaves, detail re-injection, jitter, guide, tiles; DreamObjective
    losses.py           the objectives (mean square, mean, guide match) and the gradient normalisation
    tiling.py           the gradient a tile at a time, with a halo, on the network's own unit grid
    filters.py          visualize_filters(): what each unit of a layer looks for (jitter + blur)
    patches.py          top_patches(): the 9 image patches that excite each unit most, streamed over a folder
    receptive_field.py  strides, kernels and padding -> each unit's box in the input (used by tiling and patches)
    cli.py              genfast dream run|filters|patches
"""

from genfast.dream import losses, receptive_field, tiling
from genfast.dream.deepdream import (DEFAULT_LAYERS, DreamInterrupted, DreamObjective, DreamResult, dream,
                                    octave_sizes, reinject_detail)
from genfast.dream.filters import FilterResult, visualize_filters
from genfast.dream.patches import PatchResult, top_patches

__all__ = ["dream", "DreamResult", "DreamInterrupted", "DreamObjective", "DEFAULT_LAYERS", "octave_sizes",
           "reinject_detail", "visualize_filters", "FilterResult", "top_patches", "PatchResult", "losses", "tiling",
           "receptive_field"]
