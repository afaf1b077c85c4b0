"""Drop-in modules built on genfast.ops."""

from genfast.nn.char_lstm import CharLSTM
from genfast.nn.conv import HeadConv2d, StemConv2d, StemConvTranspose2d
from genfast.nn.gram import GramMatrix, StyleLoss
from genfast.nn.instance_norm import ConditionalInstanceNorm2d, InstanceNorm2d
from genfast.nn.minibatch import MinibatchDiscrimination, MinibatchStdDev

__all__ = ["GramMatrix", "StyleLoss", "MinibatchStdDev", "MinibatchDiscrimination", "InstanceNorm2d",
           "ConditionalInstanceNorm2d", "CharLSTM", "StemConv2d", "StemConvTranspose2d", "HeadConv2d"]
