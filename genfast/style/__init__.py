"""Neural style transfer: optimisation-based (Gatys et al.), with its losses and colour control."""

from genfast.style import color, losses
from genfast.style.gatys import Objective, StylizeInterrupted, StylizeResult, stylize

__all__ = ["stylize", "StylizeResult", "StylizeInterrupted", "Objective", "losses", "color"]
