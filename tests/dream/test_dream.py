"""genfast.dream.dream: octaves, detail re-injection, the objective, jitter, stops, outputs, bad input."""

import pytest
import torch

from genfast import io
from genfast.checks import ArgumentError
from genfast.dream import deepdream as dream_mod
from genfast.dream import dream, losses, octave_sizes, reinject_detail


def run(net, image, **kw):
    kw = {"layers": {"block3": 1.0}, "octaves": 2, "steps": 2, "progress": False, "network": net, **kw}
    return dream(image, **kw)


def test_octave_sizes_grow_by_the_scale_and_end_at_the_image():
    sizes = octave_sizes((300, 200), 4, 1.4)
    assert sizes[-1] == (300, 200) and len(sizes) == 4
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:]):
        assert abs(h1 / h0 - 1.4) < 0.02 and abs(w1 / w0 - 1.4) < 0.02


def test_detail_reinjection_is_the_original_minus_its_blurred_copy(photo):
    small = io.resize(photo, (32, 48))
    got = reinject_detail(small, photo, (32, 48), (64, 96))
    want = io.resize(small, (64, 96)) + photo - io.resize(io.resize(photo, (32, 48)), (64, 96))
    torch.testing.assert_close(got, want.clamp(0, 1))


def test_without_steps_the_octaves_give_back_the_original(lite0, photo):
    # no ascent: each upscale plus its lost detail is the original at that size, so nothing is blurred
    out = run(lite0, photo, steps=0, octaves=3).image
    torch.testing.assert_close(out, photo, atol=1e-5, rtol=0)
    blurred = io.resize(io.resize(photo, octave_sizes((64, 96), 3, 1.4)[0]), (64, 96))
    assert (blurred - photo).abs().max() > 0.1          # what upscaling alone would have given


def test_ascent_raises_the_objective_and_is_reproducible(lite0, photo):
    a = run(lite0, photo, octaves=1, steps=4, seed=3)
    losses_ = [h["loss"] for h in a.history]
    assert losses_[-1] > losses_[0]
    b = run(lite0, photo, octaves=1, steps=4, seed=3)
    assert torch.equal(a.image, b.image)
    c = run(lite0, photo, octaves=1, steps=4, seed=4)
    assert not torch.equal(a.image, c.image)      # the seed draws the jitter
    assert (a.image - photo).abs().mean() > 0.005


def test_the_objective_is_the_weighted_mean_square_of_the_layers(lite0, photo):
    obj = dream_mod.DreamObjective(lite0, {"block2": 0.5, "block4_expand": 2.0})
    x = photo.clone().requires_grad_(True)
    f = lite0(x, ["block2", "block4_expand"])
    want = 0.5 * f["block2"].square().mean() + 2.0 * f["block4_expand"].square().mean()
    want.backward()
    value, grad = obj.value_and_grad(photo)
    assert value == pytest.approx(want.item(), rel=1e-5)
    torch.testing.assert_close(grad, x.grad)
    value, _ = dream_mod.DreamObjective(lite0, {"block2": 1.0}, "mean").value_and_grad(photo)
    assert value == pytest.approx(lite0(photo, ["block2"])["block2"].mean().item(), rel=1e-5)


def test_gradient_is_normalised_by_its_mean_absolute_value():
    g = torch.randn(1, 3, 8, 8) * 1e-6
    assert losses.normalize_gradient(g).abs().mean().item() == pytest.approx(1.0, rel=1e-4)


def test_the_network_stops_at_the_deepest_layer(lite0, photo, monkeypatch):
    # the folded head and the blocks after block3 are never reached: replace their weights by a poison
    folded = dict(lite0._folded)
    later = [k for k in folded if k == "head" or (k.split(".")[0].isdigit() and int(k.split(".")[0]) > 3)]
    poisoned = {k: (torch.full((1,), float("nan")),) * 2 for k in later}
    assert "4.expand" in later and "head" in later
    monkeypatch.setattr(lite0, "_folded", {**folded, **poisoned})
    run(lite0, photo, octaves=1, steps=1)


def test_max_loss_ends_each_octave(lite0, photo):
    r = run(lite0, photo, octaves=2, steps=5, max_loss=-1.0)
    assert [(h["octave"], h["step"]) for h in r.history] == [(0, 0), (1, 0)]


def test_guide_pulls_towards_the_guide(lite0, photo):
    guide = io.resize(io.load_image("skimage:chelsea"), 64)
    plain = run(lite0, photo, octaves=1, steps=3, jitter=0)
    guided = run(lite0, photo, octaves=1, steps=3, jitter=0, guide=guide)
    assert not torch.allclose(plain.image, guided.image)
    assert guided.history[-1]["loss"] > guided.history[0]["loss"]


def test_writes_png_jpeg_and_the_octaves(lite0, photo, tmp_path):
    r = run(lite0, photo, output=tmp_path / "d.jpg", save_octaves=True)
    assert r.output.is_file() and [p.name for p in r.octave_outputs] == ["d_octave0.jpg", "d_octave1.jpg"]
    assert io.load_image(r.octave_outputs[0]).shape[-2:] == r.sizes[0]
    r = run(lite0, photo, output=tmp_path / "d.png")
    assert torch.allclose(io.load_image(r.output), r.image, atol=1 / 255)
    assert not list(tmp_path.glob(".*"))                 # no temporary files left behind


def test_refuses_to_overwrite_its_input(lite0, photo, tmp_path):
    path = io.save_image(photo, tmp_path / "in.png")
    with pytest.raises(ArgumentError, match="output: .* is the image file"):
        run(lite0, path, output=path)


@pytest.mark.parametrize("kwargs, message", [
    ({"octave_scale": 1.0}, "octave_scale: expected a number > 1"),
    ({"octave_scale": 0.5}, "octave_scale: expected a number > 1"),
    ({"octaves": 0}, "octaves: expected an integer >= 1, got 0"),
    ({"steps": -1}, "steps: expected an integer >= 0, got -1"),
    ({"step_size": 0}, "step_size: must be positive"),
    ({"objective": "norm"}, "objective: expected one of mean_square, mean"),
    ({"layers": {"blocks.4": 1.0}}, "layers: unknown layer 'blocks.4' .*known layers: stem, block0_dw"),
    ({"layers": ["logits"]}, "layers: 'logits' has no image positions"),
    ({"layers": {"block3": 0.0}}, "layers: every layer weighs 0"),
    ({"output": "x.gif"}, "output: unknown image suffix"),
])
def test_bad_input_is_refused_by_name(lite0, photo, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run(lite0, photo, **kwargs)


def test_an_image_too_small_for_the_octaves_says_the_smallest_that_works(lite0, photo):
    with pytest.raises(ArgumentError, match=r"image: the image is 96x64: 7 octaves of scale 1.4 need at least "
                                            r"(\d+) pixels") as e:
        run(lite0, photo, octaves=7)
    need = int(e.value.detail.split("at least ")[1].split()[0])
    assert need == dream_mod.smallest_side(16, 7, 1.4)      # block3 has 8 px units; the net's minimum is 16
    ok = io.resize(photo, (need, round(need * 1.5)))
    assert run(lite0, ok, octaves=7, steps=0).sizes[0][0] >= 16
    with pytest.raises(ArgumentError, match="need at least"):
        run(lite0, io.resize(photo, (need - 1, round(need * 1.5))), octaves=7, steps=0)


def test_tiled_dream_gives_the_untiled_image(lite0, photo):
    # halo = receptive field: the tiled gradient is the untiled one, so the images agree to rounding
    a = run(lite0, photo, octaves=1, steps=2, jitter=5)
    b = run(lite0, photo, octaves=1, steps=2, jitter=5, tile=32)
    assert len(dream_mod.DreamObjective(lite0, {"block3": 1.0}, tile=32).tiles((64, 96))) == 6
    torch.testing.assert_close(b.image, a.image, atol=1e-5, rtol=0)
    assert [h["loss"] for h in b.history] == pytest.approx([h["loss"] for h in a.history], rel=1e-5)


def test_ctrl_c_writes_the_image_so_far(lite0, photo, tmp_path):
    from genfast.dream import DreamInterrupted

    def stop(octave, step, image):
        if step == 1:
            raise KeyboardInterrupt

    with pytest.raises(DreamInterrupted, match="interrupted after 2 steps") as e:
        run(lite0, photo, octaves=1, steps=5, output=tmp_path / "d.png", callback=stop)
    assert io.load_image(e.value.output).shape == photo.shape
