"""genfast.dream.visualize_filters: the ascent raises each unit, the sheet, the seed, bad input."""

import pytest
import torch

from genfast import io
from genfast.dream.filters import FourierImage, gaussian_blur, visualize_filters


def test_each_unit_rises_from_noise_and_the_sheet_is_written(lite0, tmp_path):
    kw = dict(network=lite0, units=[1, 4], size=32, progress=False, seed=5)
    start = visualize_filters("block1_expand", steps=0, **kw)
    r = visualize_filters("block1_expand", steps=8, output=tmp_path / "f.png", **kw)
    assert r.images.shape == (2, 3, 32, 32) and r.units == [1, 4]
    assert all(a > b for a, b in zip(r.activations, start.activations))
    sheet = io.load_image(r.output)
    assert sheet.shape[-1] >= 2 * 32 and sheet.shape[-2] > 32          # two tiles, title and labels
    again = visualize_filters("block1_expand", steps=8, **kw)
    assert torch.equal(again.images, r.images)


def test_fourier_parameterization_raises_each_unit(lite0):
    kw = dict(network=lite0, units=[1, 4], size=32, progress=False, seed=5, parameterization="fourier")
    start = visualize_filters("block1_expand", steps=0, **kw)
    r = visualize_filters("block1_expand", steps=8, **kw)
    assert r.images.shape == (2, 3, 32, 32) and 0 < float(r.images.min()) and float(r.images.max()) < 1
    assert all(a > b for a, b in zip(r.activations, start.activations))
    assert torch.equal(visualize_filters("block1_expand", steps=8, **kw).images, r.images)


def test_fourier_image_is_grey_at_zero_and_scales_frequencies_by_one_over_f():
    img = FourierImage(2, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img.spectrum.zero_()
    torch.testing.assert_close(img(), torch.full((2, 3, 16, 16), 0.5))
    # one unit of spectrum at horizontal frequency 1/16 against one at 4/16: 4x larger in pixels
    amp = []
    for fx in (1, 4):
        with torch.no_grad():
            img.spectrum.zero_()
            img.spectrum[0, 0, 0, fx, 0] = 1.0
        spec = torch.view_as_complex(img.spectrum) * img.scale
        amp.append(float(torch.fft.irfft2(spec, s=(16, 16), norm="ortho").abs().max()))
    assert amp[0] == pytest.approx(4 * amp[1], rel=1e-5)
    # the colour map: decorrelated channels to RGB, its largest column of norm 1
    assert float(img.color.norm(dim=0).max()) == pytest.approx(1.0)


def test_whole_layer_is_one_image(lite0):
    r = visualize_filters("block1", network=lite0, whole_layer=True, size=32, steps=2, progress=False)
    assert r.images.shape[0] == 1 and r.units == [None]


def test_blur_keeps_a_constant_image_and_smooths_noise():
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)
    noise = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert gaussian_blur(noise, 1.0).std() < 0.6 * noise.std()


@pytest.mark.parametrize("kwargs, message", [
    ({"units": 0}, "units: expected an integer in \\[1, 96\\], got 0"),
    ({"units": [96]}, "units: expected channels in \\[0, 95\\]"),
    ({"layer": "nope"}, "layer: unknown layer 'nope'"),
    ({"size": 8}, "size: expected an integer >= 16, got 8"),
    ({"steps": -1}, "steps: expected an integer >= 0"),
    ({"parameterization": "lucid"}, "parameterization: expected one of pixel, fourier, got 'lucid'"),
])
def test_bad_input_is_refused_by_name(lite0, kwargs, message):
    kwargs = {"layer": "block1_expand", **kwargs}
    with pytest.raises(ValueError, match=message):
        visualize_filters(kwargs.pop("layer"), network=lite0, steps=kwargs.pop("steps", 1), progress=False,
                          size=kwargs.pop("size", 32), **kwargs)
