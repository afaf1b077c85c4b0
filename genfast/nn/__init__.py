"""Drop-in modules built on genfast.ops."""

from genfast.nn.gram import GramMatrix, StyleLoss

__all__ = ["GramMatrix", "StyleLoss"]
