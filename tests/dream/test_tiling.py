"""Receptive fields from the networks' strides, kernels and padding; the tiled DeepDream gradient."""

import pytest
import torch

from genfast import models
from genfast.dream import receptive_field as rf
from genfast.dream import tiling
from genfast.dream.deepdream import DreamObjective


def gradient_box(net, x, layer, y, x_):
    """The box of input pixels with a non-zero gradient of unit (y, x_)'s channel sum."""
    x = x.clone().requires_grad_(True)
    f = net(x, [layer])[layer]
    (g,) = torch.autograd.grad(f[0, :, y, x_].sum(), x)
    nz = g[0].abs().sum(0).nonzero()
    return (nz[:, 0].min().item(), nz[:, 1].min().item(), nz[:, 0].max().item() + 1, nz[:, 1].max().item() + 1), f.shape


@pytest.mark.parametrize("hw", [(100, 113), (97, 110)])
@pytest.mark.parametrize("layer", ["stem", "block1_dw", "block3", "block5"])
def test_lite0_receptive_field_is_where_the_gradient_reaches(lite0, hw, layer):
    # SAME padding depends on each layer's input size: odd and even sizes both checked
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0))
    rows, cols = rf.geometry(lite0, layer, hw)
    y, x_ = rows.length // 2, cols.length // 3
    box, shape = gradient_box(lite0, x, layer, y, x_)
    assert (rows.length, cols.length) == tuple(shape[-2:])
    assert rf.receptive_box(lite0, layer, hw, y, x_) == box


@pytest.mark.parametrize("layer", ["conv1_1", "relu2_2", "pool2", "relu3_1"])
def test_vgg_receptive_field_is_where_the_gradient_reaches(layer):
    torch.manual_seed(0)
    net = models.VGG("vgg16").eval().requires_grad_(False)
    hw = (61, 70)
    x = torch.rand(1, 3, *hw)
    rows, cols = rf.geometry(net, layer, hw)
    y, x_ = rows.length // 2, cols.length - 1
    box, shape = gradient_box(net, x, layer, y, x_)
    assert (rows.length, cols.length) == tuple(shape[-2:])
    assert rf.receptive_box(net, layer, hw, y, x_) == box


def test_the_recurrence_by_hand():
    # two 3x3 convolutions, stride 2 then 1, padding 1: spacing 2, field 7, unit 0 centred on pixel 0
    g = rf.axis_geometry([rf.Window(3, 2, 1), rf.Window(3, 1, 1)], 10)
    assert (g.jump, g.size, g.first, g.length) == (2, 7, -3, 5)
    assert g.span(0) == (0, 4) and g.span(4) == (5, 10)


def test_plan_partitions_the_image_on_the_unit_grid():
    h, w, align = 203, 150, 16
    tiles = tiling.plan(h, w, 64, 20, align)
    covered = torch.zeros(h, w, dtype=torch.int32)
    for t in tiles:
        covered[t.core[0]:t.core[2], t.core[1]:t.core[3]] += 1
        assert t.crop[0] % align == 0 and t.crop[1] % align == 0
        assert (t.crop[2] - t.crop[0]) % align == h % align and (t.crop[3] - t.crop[1]) % align == w % align
        assert t.crop[0] <= t.core[0] - min(20, t.core[0]) and t.crop[2] >= min(h, t.core[2] + 20)
    assert covered.eq(1).all()
    assert tiling.plan(h, w, None, 20, align) == [tiling.Tile((0, 0, h, w), (0, 0, h, w))]


LAYERS = {"block1_expand": 1.0, "block3": 2.0}


@pytest.mark.parametrize("hw, tile, count", [((160, 200), 64, 12), ((150, 211), 100, 6)])
def test_tiled_gradient_equals_the_untiled_one_with_the_receptive_field_as_halo(lite0, hw, tile, count):
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(1))
    want_value, want = DreamObjective(lite0, LAYERS).value_and_grad(x)
    tiled = DreamObjective(lite0, LAYERS, tile=tile)
    assert len(tiled.tiles(hw)) == count
    value, grad = tiled.value_and_grad(x)
    assert value == pytest.approx(want_value, rel=1e-5)
    torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-5 * want.abs().max().item())


def test_a_small_halo_differs_only_near_the_tile_borders(lite0):
    hw = (160, 192)
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(2))
    _, want = DreamObjective(lite0, LAYERS).value_and_grad(x)
    tiled = DreamObjective(lite0, LAYERS, tile=64, halo=0)
    _, grad = tiled.value_and_grad(x)
    reach = 35                      # block3's receptive field
    near = torch.zeros(hw, dtype=torch.bool)
    for t in tiled.tiles(hw):
        for edge in (t.core[0], t.core[2]):
            if 0 < edge < hw[0]:
                near[max(0, edge - reach):edge + reach] = True
        for edge in (t.core[1], t.core[3]):
            if 0 < edge < hw[1]:
                near[:, max(0, edge - reach):edge + reach] = True
    assert near.any() and not near.all()
    scale = want.abs().max().item()
    torch.testing.assert_close(grad[..., ~near], want[..., ~near], rtol=1e-4, atol=1e-5 * scale)
    assert (grad - want).abs().max() > 1e-2 * scale          # the halo matters at the borders
