"""Feed-forward stylizers: TransformerNet against the pytorch/examples layout, its fast paths with
autograd, checkpoints, MultiStyleNet, stylize_images, the `genfast stylize --model` and
`genfast export-onnx` commands, and the benchmark's cases."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genfast import io
from genfast.reference.transformer_net import TransformerNet as PlainNet
from genfast.style import MultiStyleNet, TransformerNet, load_stylizer, save_stylizer
from genfast.style.apply import stylize_images
from genfast.style.networks import read_state_dict, space_to_depth_conv, upsample2_reflect_conv3x3


# --- pytorch/examples fast_neural_style/neural_style/transformer_net.py, as written there ---------
# Deliberately a second copy beside genfast/reference/transformer_net.py (`duplicates` lists the
# pair): this one is the external network whose checkpoints must load, so the test does not take
# genfast's own twin on trust.

class ExConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class ExResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = ExConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ExConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


class ExUpsampleConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class ExTransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ExConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ExConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ExConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ExResidualBlock(128)
        self.res2 = ExResidualBlock(128)
        self.res3 = ExResidualBlock(128)
        self.res4 = ExResidualBlock(128)
        self.res5 = ExResidualBlock(128)
        self.deconv1 = ExUpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = ExUpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ExConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res1(y)
        y = self.res2(y)
        y = self.res3(y)
        y = self.res4(y)
        y = self.res5(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        y = self.deconv3(y)
        return y


def example_net(seed=0) -> ExTransformerNet:
    """Random weights, with instance-norm scales and shifts far from the identity."""
    torch.manual_seed(seed)
    net = ExTransformerNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net.eval()


def images(n=1, size=(32, 40), seed=0):
    return torch.rand(n, 3, *size, generator=torch.Generator().manual_seed(seed)) * 255


def close(got, want, rel=2e-5):
    # float32 rounding, relative to the output's scale (instance norms renormalise every layer)
    torch.testing.assert_close(got, want, rtol=0, atol=rel * want.abs().max().item())


@pytest.fixture
def one_thread():
    # gradcheck runs thousands of tiny ops: threads only add synchronisation on a shared machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def example():
    return example_net()


@pytest.fixture(scope="module")
def genfast_net(example):
    net = TransformerNet().eval()
    net.load_state_dict(example.state_dict())
    return net


# --- equality with the pytorch/examples layout ---------------------------------------------------

@pytest.mark.parametrize("size,n", [((32, 40), 1), ((24, 24), 2)])
def test_transformer_net_equals_pytorch_examples(example, genfast_net, size, n):
    x = images(n, size)
    with torch.no_grad():
        want = example(x)
        got = genfast_net(x)
    assert got.shape == want.shape and got.is_contiguous()
    close(got, want)


def test_inference_mode_and_channels_last_input(example, genfast_net):
    x = images(2, (28, 36), seed=1)
    with torch.no_grad():
        want = example(x)
    with torch.inference_mode():
        got = genfast_net(x.contiguous(memory_format=torch.channels_last))
    assert got.is_contiguous(memory_format=torch.channels_last)
    close(got, want)


def test_inference_per_image_path_equals_the_batched_path(example, genfast_net, multi):
    # under no_grad a CPU batch runs one image at a time; with autograd on, as one batch
    x = images(3, (20, 24), seed=23)
    with torch.no_grad():
        per_image = genfast_net(x)
        want = example(x)
    batched = genfast_net(x).detach()
    close(per_image, batched)
    close(per_image, want)
    style = torch.tensor([2, 0, 1])
    with torch.no_grad():
        per_image = multi(x, style)
    close(per_image, multi(x, style).detach())


def test_reference_twin_equals_pytorch_examples(example):
    plain = PlainNet().eval()
    plain.load_state_dict(example.state_dict())
    x = images(1, (20, 28), seed=2)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), example(x), rtol=0, atol=0)


def test_gradients_match_pytorch_examples(example):
    # the same training step on both, in float64 so that rounding does not hide a wrong gradient
    import copy

    ex = copy.deepcopy(example).double()
    net = TransformerNet().double()
    net.load_state_dict(ex.state_dict())
    x = images(1, (24, 32), seed=3).double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(1, 3, 24, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    (ex(xa) * g).sum().backward()
    (net(xb) * g).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-7, atol=1e-9 * xa.grad.abs().max().item())
    ex_params = dict(ex.named_parameters())
    scale = max(p.grad.abs().max().item() for p in ex.parameters())
    for name, p in net.named_parameters():
        # conv biases before an instance norm have a zero gradient: compare against the overall scale
        torch.testing.assert_close(p.grad, ex_params[name].grad, rtol=1e-6, atol=1e-9 * scale, msg=name)


def test_inference_weight_cache_follows_parameter_changes(example):
    # under no_grad the re-laid-out weights are cached; in-place updates, load_state_dict and new
    # parameters must all be seen
    net = TransformerNet().eval()
    net.load_state_dict(example.state_dict())
    x = images(1, (16, 20), seed=22)
    with torch.no_grad():
        before = net(x)
        net.deconv3.conv2d.weight.mul_(2.0)      # in place (version counter moves)
        net.deconv1.conv2d.bias.add_(1.0)
        net.res3.conv1.conv2d.weight.mul_(0.5)
        changed = net(x)
    plain = PlainNet().eval()
    plain.load_state_dict(net.state_dict())
    with torch.no_grad():
        close(changed, plain(x))
        assert (changed - before).abs().max() > 1e-2
        net.load_state_dict(example.state_dict())
        close(net(x), before)
        net.deconv3.conv2d.weight = nn.Parameter(net.deconv3.conv2d.weight * 2.0)  # a new parameter
        close(net(x), changed_only_deconv3(example, x))
    # with autograd on, nothing cached is used: gradients reach the parameters
    net.zero_grad()
    net(x).sum().backward()
    assert net.deconv3.conv2d.weight.grad is not None and net.deconv1.conv2d.weight.grad.abs().sum() > 0


def changed_only_deconv3(example, x):
    plain = PlainNet().eval()
    plain.load_state_dict(example.state_dict())
    with torch.no_grad():
        plain.deconv3.conv2d.weight.mul_(2.0)
        return plain(x)


@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample_conv_fast_path_is_exact_with_gradients(channels_last, one_thread):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 2, 3, 4, dtype=torch.float64, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(3, dtype=torch.float64, generator=gen)
    want = F.conv2d(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"), w, b)
    torch.testing.assert_close(upsample2_reflect_conv3x3(x, w, b), want)
    assert torch.autograd.gradcheck(upsample2_reflect_conv3x3,
                                    (x.detach().requires_grad_(), w.requires_grad_(), b.requires_grad_()))


def test_space_to_depth_conv_is_exact_with_gradients(one_thread):
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(2, 4, 14, 12, dtype=torch.float64, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(3, 4, 9, 9, dtype=torch.float64, generator=gen)
    b = torch.randn(3, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(space_to_depth_conv(x, w, b), F.conv2d(x, w, b))
    # gradients on a small 5x5 case (gradcheck perturbs every element)
    x = torch.randn(1, 1, 8, 6, dtype=torch.float64, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(2, 1, 5, 5, dtype=torch.float64, generator=gen)
    b = torch.randn(2, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(space_to_depth_conv(x, w, b), F.conv2d(x, w, b))
    assert torch.autograd.gradcheck(space_to_depth_conv,
                                    (x.detach().requires_grad_(), w.requires_grad_(), b.requires_grad_()))


def test_odd_sizes_follow_the_network(example, genfast_net):
    # not multiples of 4: the network itself returns ceil4-sized output; genfast does the same thing
    x = images(1, (21, 26), seed=7)
    with torch.no_grad():
        want, got = example(x), genfast_net(x)
    assert got.shape == want.shape == (1, 3, 24, 28)
    close(got, want)


def test_bad_inputs_name_the_argument(genfast_net):
    with pytest.raises(ValueError, match="x of shape"):
        genfast_net(torch.rand(1, 4, 16, 16))
    with pytest.raises(TypeError, match="x to be a floating-point"):
        genfast_net(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least 5x5"):
        genfast_net(torch.rand(1, 3, 4, 16))


# --- checkpoints ---------------------------------------------------------------------------------

def _stale(state):
    """What pre-0.4 checkpoints (the pytorch/examples downloads) carry: running stats per norm."""
    out = dict(state)
    for k, v in state.items():
        if k.split(".")[-2].startswith("in") and k.endswith(".weight"):
            out[k[:-len("weight")] + "running_mean"] = torch.zeros_like(v)
            out[k[:-len("weight")] + "running_var"] = torch.ones_like(v)
    return out


def test_checkpoint_with_stale_keys_and_module_prefix(tmp_path, example):
    state = _stale(example.state_dict())
    assert any(k.endswith("running_mean") for k in state)
    path = tmp_path / "candy_like.pth"
    torch.save({"module." + k: v for k, v in state.items()}, path)
    model = load_stylizer(path)
    assert isinstance(model, TransformerNet) and not model.training
    x = images(1, (16, 20), seed=8)
    with torch.no_grad():
        close(model(x), example(x))
    # the plain twin takes the same stale file
    plain = PlainNet()
    plain.load_state_dict(_stale(example.state_dict()))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_save_load_round_trip(tmp_path, genfast_net, suffix):
    path = save_stylizer(genfast_net, tmp_path / f"model{suffix}")
    loaded = load_stylizer(path)
    for k, v in genfast_net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert set(read_state_dict(path)) == set(genfast_net.state_dict())


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        load_stylizer(tmp_path / "missing.pth")
    bad = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(ValueError, match="neither a TransformerNet"):
        load_stylizer(bad)


# --- MultiStyleNet -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def multi():
    torch.manual_seed(9)
    net = MultiStyleNet(3)
    with torch.no_grad():
        for norm in net.conditional_norms():
            norm.gamma.uniform_(0.5, 1.5)
            norm.beta.uniform_(-0.5, 0.5)
    return net.eval()


def test_one_hot_mixing_equals_index(multi):
    x = images(2, (16, 20), seed=10)
    with torch.no_grad():
        by_index = multi(x, torch.tensor([2, 0]))
        one_hot = multi(x, torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
        by_int = multi(x[:1], 2)
    close(one_hot, by_index)
    close(by_int, by_index[:1])


def test_mixing_blends_styles(multi):
    x = images(1, (16, 16), seed=11)
    with torch.no_grad():
        a, b = multi(x, 0), multi(x, 1)
        mix = multi(x, torch.tensor([[0.5, 0.5, 0.0]]))
    assert (mix - a).abs().mean() > 1e-3 and (mix - b).abs().mean() > 1e-3
    # a blend lies between its styles much more than either style lies near the other
    assert (mix - (a + b) / 2).abs().mean() < (a - b).abs().mean()


def test_multi_style_equals_plain_net_with_that_style(multi):
    from genfast.style.export import reference_twin

    plain = reference_twin(multi, style_index=1)
    x = images(1, (20, 24), seed=12)
    with torch.no_grad():
        close(multi(x, 1), plain(x))


def test_add_style():
    torch.manual_seed(13)
    net = MultiStyleNet(2).eval()
    x = images(1, (16, 16), seed=14)
    with torch.no_grad():
        before = net(x, 1)
        new = net.add_style(init_from=1)
        assert new == 2 and net.num_styles == 3
        assert all(n.gamma.shape[0] == 3 for n in net.conditional_norms())
        close(net(x, 2), before)
        identity = net.add_style()
        assert identity == 3
        assert torch.equal(net.in1.gamma[3], torch.ones(32)) and torch.equal(net.in1.beta[3], torch.zeros(32))


def test_multi_style_bad_style(multi):
    x = images(1, (16, 16))
    with pytest.raises(ValueError, match="style index"):
        multi(x, 3)
    with pytest.raises(TypeError, match="style"):
        multi(x, "candy")


def test_multi_style_checkpoint_round_trip(tmp_path, multi):
    path = save_stylizer(multi, tmp_path / "multi.safetensors")
    loaded = load_stylizer(path)
    assert isinstance(loaded, MultiStyleNet) and loaded.num_styles == 3
    x = images(1, (16, 16), seed=15)
    with torch.no_grad():
        close(loaded(x, 2), multi(x, 2))


# --- stylize_images ------------------------------------------------------------------------------

def test_stylize_images_matches_the_network(genfast_net):
    x = torch.rand(3, 32, 24, generator=torch.Generator().manual_seed(16))
    out = stylize_images(genfast_net, [x], progress=False)
    assert isinstance(out, list) and out[0].shape == x.shape
    with torch.no_grad():
        want = genfast_net(x[None] * 255).clamp(0, 255)[0] / 255
    close(out[0], want)
    assert out[0].min() >= 0 and out[0].max() <= 1
    # results are ordinary tensors (not inference tensors): usable with autograd afterwards
    assert not out[0].is_inference()


def test_stylize_images_odd_and_mixed_sizes(genfast_net):
    gen = torch.Generator().manual_seed(17)
    sizes = [(21, 26), (32, 32), (21, 26), (17, 30), (32, 32)]
    ims = [torch.rand(3, *s, generator=gen) for s in sizes]
    ims[1] = ims[1][None]  # (1, 3, H, W), what genfast.io.load_image returns
    out = stylize_images(genfast_net, ims, batch_size=1, progress=False)
    assert [tuple(o.shape) for o in out] == [(3, *s) for s in sizes]
    # batching does not change results
    again = stylize_images(genfast_net, ims, batch_size=4, progress=False)
    for a, b in zip(out, again):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    # odd sizes: reflect-pad to a multiple of 4, stylize, crop back
    padded = F.pad(ims[0][None] * 255, (1, 1, 1, 2), mode="reflect")
    with torch.no_grad():
        want = genfast_net(padded)[:, :, 1:22, 1:27].clamp(0, 255)[0] / 255
    close(out[0], want)


def test_stylize_images_tensor_in_tensor_out(genfast_net):
    batch = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(18))
    out = stylize_images(genfast_net, batch, progress=False)
    assert out.shape == batch.shape
    single = stylize_images(genfast_net, batch[0], progress=False)
    assert single.shape == batch[0].shape
    torch.testing.assert_close(single, out[0], rtol=0, atol=1e-5)


def test_stylize_images_multi_style(multi):
    x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(19))
    by_index = stylize_images(multi, [x], style=2, progress=False)[0]
    by_mix = stylize_images(multi, [x], style=[0.0, 0.0, 1.0], progress=False)[0]
    torch.testing.assert_close(by_mix, by_index, rtol=0, atol=1e-5)
    by_tensor = stylize_images(multi, [x], style=torch.tensor(2), progress=False)[0]
    torch.testing.assert_close(by_tensor, by_index, rtol=0, atol=0)


def test_stylize_images_bad_inputs(genfast_net, multi):
    good = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match=r"images\[1\] of shape"):
        stylize_images(genfast_net, [good, torch.rand(4, 16, 16)], progress=False)
    with pytest.raises(TypeError, match=r"images\[0\] to be a floating-point"):
        stylize_images(genfast_net, [torch.zeros(3, 16, 16, dtype=torch.uint8)], progress=False)
    with pytest.raises(ValueError, match=r"images\[0\] of at least"):
        stylize_images(genfast_net, [torch.rand(3, 4, 16)], progress=False)
    with pytest.raises(TypeError, match="images to be a tensor or a list"):
        stylize_images(genfast_net, "photo.png", progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        stylize_images(genfast_net, [good], batch_size=0, progress=False)
    with pytest.raises(TypeError, match="model"):
        stylize_images(42, [good], progress=False)
    with pytest.raises(ValueError, match="style was given"):
        stylize_images(genfast_net, [good], style=1, progress=False)
    with pytest.raises(ValueError, match="pass style="):
        stylize_images(multi, [good], progress=False)
    with pytest.raises(ValueError, match="style mixing weights of shape"):
        stylize_images(multi, [good], style=[0.5, 0.5], progress=False)
    with pytest.raises(ValueError, match="style index"):
        stylize_images(multi, [good], style=5, progress=False)


# --- command line --------------------------------------------------------------------------------

def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "genfast", *argv], capture_output=True, text=True, timeout=300)


def test_stylize_model_cli(tmp_path, genfast_net):
    model = save_stylizer(genfast_net, tmp_path / "tiny.pth")
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    gen = torch.Generator().manual_seed(20)
    io.save_image(torch.rand(3, 30, 34, generator=gen), a)
    io.save_image(torch.rand(3, 24, 24, generator=gen), b)
    out_dir = tmp_path / "out"
    proc = _cli("stylize", "--model", str(model), "--content", str(a), str(b), "--output", str(out_dir),
                "--size", "32", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "frames/s" in proc.stdout
    ra, rb = io.load_image(out_dir / "a_stylized.png"), io.load_image(out_dir / "b_stylized.png")
    assert ra.shape == (1, 3, 28, 32) and rb.shape == (1, 3, 32, 32)
    # the written image is what stylize_images gives
    want = stylize_images(genfast_net, [io.load_image(a, 32)], progress=False)[0]
    assert (ra[0] - want).abs().max() <= 1 / 255 + 1e-6
    # one content: --output may be a file
    single = tmp_path / "single.png"
    proc = _cli("stylize", "--model", str(model), "--content", str(a), "--output", str(single), "--size", "32",
                "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert single.is_file()


def test_stylize_model_cli_errors(tmp_path, capsys, genfast_net, multi):
    from genfast.cli import main

    model = save_stylizer(genfast_net, tmp_path / "tiny.safetensors")
    multi_path = save_stylizer(multi, tmp_path / "multi.pth")
    a = tmp_path / "a.png"
    io.save_image(torch.rand(3, 16, 16), a)

    def run(*extra, model=model, content=(str(a),), output=tmp_path / "o.png"):
        code = main(["stylize", "--model", str(model), "--content", *content, "--output", str(output),
                     "--size", "16", "--quiet", *extra])
        return code, capsys.readouterr().err

    code, err = run("--style-index", "1")
    assert code == 2 and "--style-index" in err
    code, err = run(model=multi_path)
    assert code == 2 and "--style-index" in err
    code, err = run("--mix", "1", "1", model=multi_path)
    assert code == 2 and "--mix" in err
    code, err = run("--style", str(a))
    assert code == 2 and "--style" in err
    code, err = run(content=(str(a), str(a)), output=tmp_path / "x.png")
    assert code == 2 and "--output" in err
    code, err = run(model=tmp_path / "nope.pth")
    assert code == 2 and "nope.pth" in err
    code, err = run("--mix", "1", "1", "0", model=multi_path, output=tmp_path / "m.png")
    assert code == 0, err
    assert (tmp_path / "m.png").is_file()


def test_export_onnx(tmp_path, genfast_net, multi):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from genfast.style.export import check_onnx, export_onnx

    path = export_onnx(genfast_net, tmp_path / "net.onnx", size=(32, 32))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images(2, (24, 36), seed=21)  # another batch size and size than at export: dynamic axes
    got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    with torch.no_grad():
        close(got, genfast_net(x), rel=5e-5)
    assert check_onnx(genfast_net, path, size=(32, 32)) < 1e-2
    # a multi-style net, for one style
    mpath = export_onnx(multi, tmp_path / "multi.onnx", size=(16, 16), style_index=1)
    assert check_onnx(multi, mpath, size=(20, 20), style_index=1) < 1e-2
    with pytest.raises(ValueError, match="--style-index"):
        export_onnx(multi, tmp_path / "x.onnx", size=(16, 16))


def test_export_onnx_cli(tmp_path, genfast_net):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    model = save_stylizer(genfast_net, tmp_path / "tiny.pth")
    out = tmp_path / "tiny.onnx"
    proc = _cli("export-onnx", str(model), str(out), "--size", "32", "32")
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "max abs difference" in proc.stdout


# --- benchmark -----------------------------------------------------------------------------------

def test_bench_cases_compute_the_same_network():
    from genfast.bench import stylizer

    shapes = [(1, 3, 16, 16), (2, 3, 16, 20)]
    cases = stylizer.cases(torch.device("cpu"), shapes)
    assert [c.shape for c in cases] == shapes
    for case in cases:
        out = {impl: fn() for impl, fn in case.fns.items()}
        assert set(out) == {"reference", "native"} and out["native"].shape == case.shape
        close(out["native"], out["reference"])
    from genfast.bench.core import run_cases
    lines = stylizer.report(torch.device("cpu"), shapes, run_cases(cases[:1], torch.device("cpu"), repeat=1))
    assert len(lines) == 1 and "frames/s 16x16 batch 1" in lines[0]


def test_bench_command_runs_the_stylizer(tmp_path):
    import json

    out = tmp_path / "b.json"
    proc = _cli("bench", "--op", "stylizer", "--shape", "1,3,16,16", "--repeat", "1", "--quiet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert {r["impl"] for r in data["results"]} == {"reference", "native"}
    assert any("frames/s 16x16 batch 1" in line for line in data["report"])
