"""genfast.adversarial: adversarial training through fit_classifier's perturb hook (J steps of eps2 in
a delta-ball; J = 1, eps2 = delta is FGSM), resume and its configuration check, the robust-accuracy
report and the catastrophic-overfitting statement, the data, the plots and the CLI."""

import gzip
import json
import struct

import numpy as np
import pytest
import torch

from genfast import adversarial
from genfast.cli import main
from genfast.models import classifiers
from genfast.training.sampler import ShardedStream
from helpers import equal_state, shared


def stripes(n=96, seed=0):
    """Two classes: a bright vertical bar vs a bright horizontal bar on noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 28, 28, generator=g) * 0.4
    x[y == 0, :, 10:18] += 0.5
    x[y == 1, 10:18, :] += 0.5
    return (x.clamp(0, 1) * 255).round().to(torch.uint8), y


def write_idx(folder, images, labels, prefix):
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">4B3I", 0, 0, 8, 3, n, h, w) + images.numpy().tobytes()))
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">4BI", 0, 0, 8, 1, n) + labels.numpy().astype(np.uint8).tobytes()))


def test_the_perturbation_is_the_materials_inner_loop():
    torch.manual_seed(0)
    model = classifiers.classifier("lenet", 2).eval()
    x = classifiers.as_inputs(stripes(16)[0])
    y = torch.randint(0, 2, (16,))
    fgsm_training = adversarial.perturbation(adversarial.AdversarialConfig(steps=1, step_size=0.1, eps=0.1))
    assert torch.equal(fgsm_training(model, x, y), adversarial.fgsm(model, x, y, 0.1))
    three = adversarial.perturbation(adversarial.AdversarialConfig(steps=3, step_size=0.02, eps=0.05))
    assert torch.equal(three(model, x, y), adversarial.pgd(model, x, y, 0.05, steps=3, step_size=0.02,
                                                           random_start=False))


def test_adversarial_training_runs_resumes_and_checks_its_settings(tmp_path):
    x, y = stripes(64)
    adv = adversarial.AdversarialConfig(steps=2, step_size=0.05, eps=0.1)
    config = adversarial.TrainConfig(arch="lenet", epochs=2, batch_size=32, lr=3e-3, checkpoint_every=2,
                                     adversarial=adv)
    kw = dict(progress=False, val=(x[:16], y[:16]))
    full = adversarial.train(x, y, tmp_path / "a.safetensors", config, **kw)
    assert full.steps == 4 and all(np.isfinite(h["loss"]) for h in full.history)

    def stop(step, _):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        adversarial.train(x, y, tmp_path / "b.safetensors", config, callback=stop, **kw)
    resumed = adversarial.train(x, y, tmp_path / "b.safetensors", config, **kw)
    assert resumed.start_step == 3 and equal_state(resumed.model.state_dict(), full.model.state_dict())
    other = adversarial.TrainConfig(**{**config.__dict__, "adversarial": adversarial.AdversarialConfig(3, 0.05, 0.1)})
    with pytest.raises(ValueError, match="different configuration.*perturb"):
        adversarial.train(x, y, tmp_path / "b.safetensors", other, **kw)
    loaded = adversarial.load_classifier(tmp_path / "b.safetensors")
    assert equal_state(loaded.state_dict(), full.model.state_dict())


def test_adversarial_training_learns_robustness(tmp_path):
    """On the bars, PGD at eps 0.15 breaks a normally trained LeNet; the adversarially trained one holds."""
    x, y = stripes(160, seed=1)
    xt, yt = stripes(100, seed=2)
    xt = classifiers.as_inputs(xt)
    reports = {}
    for name, adv in (("normal", None), ("robust", adversarial.AdversarialConfig(steps=2, step_size=0.08, eps=0.15))):
        config = adversarial.TrainConfig(arch="lenet", epochs=4, batch_size=32, lr=3e-3, checkpoint_every=0,
                                         adversarial=adv)
        result = adversarial.train(x, y, tmp_path / f"{name}.safetensors", config, progress=False)
        reports[name] = adversarial.evaluate(result.model, xt, yt, [0.15], pgd_steps=5)
    normal, robust = reports["normal"], reports["robust"]
    assert normal["clean"] > 0.95 and robust["clean"] > 0.9, reports
    assert robust["pgd"][0] > normal["pgd"][0] + 0.3, reports


def test_clean_weight_trains_on_the_mixed_objective(tmp_path):
    """One step with clean_weight 0.3 equals one hand-written SGD step on 0.3 * L(x) + 0.7 * L(z_J); the
    plain objective (0) is L(z_J) alone, a different step."""
    x, y = stripes(32)
    adv = adversarial.AdversarialConfig(steps=1, step_size=0.1, eps=0.1, clean_weight=0.3)
    config = adversarial.TrainConfig(arch="lenet", epochs=1, batch_size=32, lr=0.5, optimizer="adadelta",
                                     checkpoint_every=0, adversarial=adv)
    trained = adversarial.train(x, y, tmp_path / "mixed.safetensors", config, progress=False).model

    torch.manual_seed(config.seed)
    xf = classifiers.as_inputs(x)
    model = classifiers.classifier("lenet", 10, mean=float(xf.mean()), std=float(xf.std()))
    opt = torch.optim.Adadelta(model.parameters(), lr=0.5)
    torch.manual_seed(config.seed)
    idx = torch.tensor(ShardedStream(32, config.seed, 0, 1).batch(0, 32))
    xb, yb = xf[idx], y[idx]
    z = adversarial.fgsm(model.eval(), xb, yb, 0.1)
    model.train()
    out = model(torch.cat([xb, z]))
    loss = 0.3 * torch.nn.functional.cross_entropy(out[:32], yb) + 0.7 * torch.nn.functional.cross_entropy(out[32:], yb)
    loss.backward()
    opt.step()
    for (name, a), b in zip(trained.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)

    plain = adversarial.train(x, y, tmp_path / "plain.safetensors", adversarial.TrainConfig(
        **{**config.__dict__, "adversarial": adversarial.AdversarialConfig(1, 0.1, 0.1)}), progress=False).model
    assert not equal_state(plain.state_dict(), trained.state_dict())


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="clean_weight: expected a number <= 1"):
        adversarial.AdversarialConfig(clean_weight=1.5).check()
    with pytest.raises(ValueError, match="steps: expected an integer >= 1, got 0"):
        adversarial.AdversarialConfig(steps=0).check()
    with pytest.raises(ValueError, match="eps: expected a radius delta >= the step size eps2 = 0.2"):
        adversarial.AdversarialConfig(step_size=0.2, eps=0.1).check()
    with pytest.raises(ValueError, match="step_size: must be positive"):
        adversarial.AdversarialConfig(step_size=-0.1).check()
    with pytest.raises(ValueError, match="arch"):
        adversarial.TrainConfig(arch="vgg").check()


def test_report_and_catastrophic_overfitting_statement():
    torch.manual_seed(0)
    model = classifiers.classifier("lenet", 2).eval()
    x, y = stripes(40)
    report = adversarial.evaluate(model, classifiers.as_inputs(x), y, [0.0, 0.1], pgd_steps=3)
    assert report["fgsm"][0] == report["pgd"][0] == report["clean"]       # eps 0 changes nothing
    assert report["pgd"][1] <= report["fgsm"][1] + 0.05
    assert "epsilon" in adversarial.table(report)
    fake = {"epsilons": [0.05, 0.1], "fgsm": [0.80, 0.85], "pgd": [0.70, 0.10], "clean": 0.9}
    lines = adversarial.catastrophic_overfitting(fake)
    assert len(lines) == 1 and "epsilon 0.1" in lines[0] and "not to PGD (10.0%)" in lines[0]
    assert adversarial.catastrophic_overfitting({**fake, "pgd": [0.7, 0.8]}) == []
    t = adversarial.robustness_targets({"epsilons": [0.1], "pgd": [0.02], "clean": 0.91},
                                       {"epsilons": [0.1], "pgd": [0.45], "clean": 0.87})
    assert t["pgd_gain_at_least_30"] and t["clean_within_5"] and abs(t["pgd_gain_points"] - 43) < 1e-9


def test_shared_data_reads():
    x, y, classes = adversarial.labelled_images(shared("fashion-mnist"), "test", limit=50)
    assert x.shape == (50, 28, 28) and x.dtype == torch.uint8 and y.shape == (50,) and classes[0] == "T-shirt/top"
    x, y, classes = adversarial.labelled_images(shared("digits", "digits_20x20.png"), "test")
    assert x.shape == (1000, 28, 28) and set(y.tolist()) == set(range(10)) and classes[3] == "3"


def test_cli_train_attack_eval(tmp_path, capsys):
    x, y = stripes(64)
    data = tmp_path / "data"
    write_idx(data, x, y, "train")
    write_idx(data, x[:32], y[:32], "t10k")
    model = tmp_path / "m.safetensors"
    assert main(["adversarial", "train", "--data", str(data), "--out", str(model), "--epochs", "1", "--batch-size",
                 "32", "--quiet"]) == 0
    robust = tmp_path / "r.safetensors"
    assert main(["adversarial", "train", "--data", str(data), "--out", str(robust), "--epochs", "1", "--batch-size",
                 "32", "--adversarial", "--steps", "2", "--step-size", "0.05", "--quiet"]) == 0
    assert "trained adversarially (J=2, eps2=0.05, delta=0.1)" in capsys.readouterr().out
    plot, grid, js = tmp_path / "s.png", tmp_path / "g.png", tmp_path / "s.json"
    assert main(["adversarial", "attack", str(model), "--data", str(data), "--eps", "0", "0.1", "--plot", str(plot),
                 "--examples", str(grid), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "FGSM on 32 test images" in out and plot.stat().st_size > 1000 and grid.stat().st_size > 200
    assert json.loads(js.read_text())["epsilons"] == [0.0, 0.1]
    ev = tmp_path / "e.png"
    assert main(["adversarial", "eval", str(model), str(robust), "--data", str(data), "--eps", "0.1",
                 "--pgd-steps", "2", "--plot", str(ev)]) == 0
    out = capsys.readouterr().out
    assert "PGD-2" in out and "target >= +30" in out and ev.stat().st_size > 1000
    # refused by name: negative epsilon, J < 1 (argparse: exit 2), delta < eps2, writing over an input (exit 2)
    for argv, option in ((["attack", str(model), "--data", str(data), "--eps", "-0.1"], "--eps"),
                         (["train", "--data", str(data), "--out", str(tmp_path / "x.safetensors"), "--adversarial",
                           "--steps", "0"], "--steps")):
        with pytest.raises(SystemExit) as info:
            main(["adversarial", *argv])
        assert info.value.code == 2 and option in capsys.readouterr().err
    for argv, option in ((["train", "--data", str(data), "--out", str(tmp_path / "x.safetensors"), "--adversarial",
                           "--step-size", "0.2", "--eps", "0.1", "--quiet"], "--eps: expected a radius"),
                         (["attack", str(model), "--data", str(data), "--json", str(model)], "--json: ")):
        assert main(["adversarial", *argv]) == 2
        assert option in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
