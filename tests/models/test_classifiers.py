"""genfast.models.classifiers: the two architectures, save/load, training (loss falls, resume is
bit-exact, Ctrl-C checkpoints), bad input named, and no code run on load."""

import pytest
import torch

from genfast.models import classifiers
from genfast.training import TrainingInterrupted
from helpers import code_running_pickle, equal_state


def toy_data(n=240, seed=0):
    """Two classes a small CNN separates: a bright left half vs a bright right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 28, 28, generator=g) * 0.3
    x[labels == 0, :, :14] += 0.6
    x[labels == 1, :, 14:] += 0.6
    return (x.clamp(0, 1) * 255).round().to(torch.uint8), labels


@pytest.mark.parametrize("arch,width", [("material_cnn", 128), ("lenet", 50)])
def test_shapes_and_round_trip(tmp_path, arch, width):
    torch.manual_seed(0)
    model = classifiers.classifier(arch, 10, mean=0.1307, std=0.3081).eval()
    x = torch.rand(3, 1, 28, 28)
    assert model(x).shape == (3, 10) and model.features(x).shape == (3, width)
    path = classifiers.save_classifier(model, tmp_path / "c.safetensors", classes=list("abcdefghij"))
    loaded = classifiers.load_classifier(path)
    assert equal_state(loaded.state_dict(), model.state_dict()) and loaded.classes == list("abcdefghij")
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_training_learns_and_resumes_bit_exactly(tmp_path):
    x, y = toy_data()
    kw = dict(epochs=2, batch_size=32, lr=3e-3, checkpoint_every=4, progress=False, val=(x[:80], y[:80]))

    def fresh():
        torch.manual_seed(0)
        return classifiers.classifier("lenet", 2)

    full = classifiers.fit_classifier(fresh(), x, y, out=tmp_path / "a.safetensors", **kw)
    assert full.history[-1]["val_accuracy"] > 0.9, full.history

    def stop(step, _):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        classifiers.fit_classifier(fresh(), x, y, out=tmp_path / "b.safetensors", callback=stop, **kw)
    assert info.value.step == 6 and not (tmp_path / "b.safetensors").exists()
    resumed = classifiers.fit_classifier(fresh(), x, y, out=tmp_path / "b.safetensors", **kw)
    assert resumed.start_step == 6
    assert equal_state(resumed.model.state_dict(), full.model.state_dict())
    with pytest.raises(ValueError, match="different configuration"):
        classifiers.fit_classifier(fresh(), x, y, out=tmp_path / "b.safetensors", **{**kw, "lr": 1e-2})


def test_bad_input_is_named(tmp_path):
    x, y = toy_data(20)
    model = classifiers.classifier("lenet", 2)
    with pytest.raises(ValueError, match="arch"):
        classifiers.classifier("resnet")
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        classifiers.fit_classifier(model, x, y + 5, out=tmp_path / "m.safetensors", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        classifiers.fit_classifier(model, x, y, out=tmp_path / "m.safetensors", epochs=0, progress=False)
    with pytest.raises(ValueError, match="images"):
        classifiers.fit_classifier(model, torch.rand(20, 2, 28, 28), y, out=tmp_path / "m.safetensors")


def test_loading_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = code_running_pickle(tmp_path / "c.safetensors", marker)
    with pytest.raises(ValueError, match="classifier: .* is not a safetensors file"):
        classifiers.load_classifier(evil)
    assert not marker.exists()
    text = tmp_path / "t.safetensors"
    text.write_text("hello")
    with pytest.raises(ValueError, match="is not a safetensors file"):
        classifiers.load_classifier(text)
