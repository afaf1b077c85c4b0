"""Character-level text: vocabulary, windows, training (resumable), sampling temperature, CLI."""

import subprocess
import sys

import pytest
import torch

from genfast import text


@pytest.fixture(scope="module")
def corpus():
    return text.builtin_corpus()[:60000]


def test_vocabulary_round_trip_and_unknown_policy():
    v = text.Vocabulary.from_text("hello world")
    assert v.decode(v.encode("low hello")) == "low hello"
    assert v.decode(v.encode("hex!")) == "he  "                 # replace (with space) by default
    skip = text.Vocabulary.from_text("abc ", unknown="skip")
    assert skip.decode(skip.encode("abz")) == "ab"
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        text.Vocabulary.from_text("abc", unknown="error").encode("abz")
    assert text.Vocabulary.from_dict(v.to_dict()).chars == v.chars


def test_windows_overlap_with_the_step():
    ids = torch.arange(100)
    data = text.CharWindows(ids, window=40, step=3)
    assert len(data) == (100 - 41) // 3 + 1
    x, y = data[2]
    assert torch.equal(x, torch.arange(6, 46)) and torch.equal(y, torch.arange(7, 47))
    with pytest.raises(ValueError, match="fewer than window"):
        text.CharWindows(torch.arange(10), window=40)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "model.pt"
    config = text.TrainConfig(window=40, step=3, max_steps=250, batch_size=32, lr=1e-2, embedding_dim=32,
                              hidden_size=96, num_layers=1, checkpoint_every=250, seed=0)
    model, vocab, history = text.train(corpus, out, config, progress=False)
    return out, model, vocab, history


def test_training_gets_well_below_the_unigram_entropy(corpus, trained):
    out, model, vocab, history = trained
    unigram = text.unigram_entropy_bits(vocab.encode(corpus), len(vocab))
    assert history[-1]["val_bpc"] < unigram - 1.0, (history[-1], unigram)
    loaded, v2 = text.load(out)
    assert v2.chars == vocab.chars
    for a, b in zip(loaded.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_low_temperature_is_more_repetitive(trained):
    _, model, vocab, _ = trained
    g = torch.Generator().manual_seed(0)
    cold = "".join(text.generate(model, vocab, "The ", length=400, temperature=0.2, num=4, generator=g))
    hot = "".join(text.generate(model, vocab, "The ", length=400, temperature=1.0, num=4, generator=g))
    assert text.distinct_ngram_ratio(cold, 4) < 0.8 * text.distinct_ngram_ratio(hot, 4)


def test_resume_continues_from_the_same_step(corpus, tmp_path):
    small = corpus[:20000]
    cfg = dict(window=20, step=5, batch_size=16, embedding_dim=8, hidden_size=16, num_layers=1, checkpoint_every=10,
               seed=1)
    full, _, _ = text.train(small, tmp_path / "full.pt", text.TrainConfig(max_steps=30, **cfg), progress=False)
    text.train(small, tmp_path / "part.pt", text.TrainConfig(max_steps=20, **cfg), progress=False)   # "killed" at 20
    resumed, _, history = text.train(small, tmp_path / "part.pt", text.TrainConfig(max_steps=30, **cfg),
                                     progress=False)
    assert [h["step"] for h in history] == [10, 20, 30]
    for a, b in zip(resumed.parameters(), full.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bad_corpus_and_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus: no such file"):
        text.read_corpus(tmp_path / "missing.txt")
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(ValueError, match="not UTF-8"):
        text.read_corpus(bad)
    junk = tmp_path / "junk.pt"
    torch.save({"x": 1}, junk)
    with pytest.raises(ValueError, match="not a genfast text checkpoint"):
        text.load(junk)


def test_cli_train_and_sample(tmp_path, corpus):
    src = tmp_path / "c.txt"
    src.write_text(corpus[:8000], encoding="utf-8")
    out = tmp_path / "m.pt"
    r = subprocess.run([sys.executable, "-m", "genfast", "text", "train", str(src), "--out", str(out), "--max-steps",
                        "5", "--hidden-size", "16", "--embedding-dim", "8", "--num-layers", "1", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "genfast", "text", "sample", str(out), "--prime", "def ",
                        "--temperature", "0.5", "1.0", "--length", "30", "--num", "2", "--seed", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("--- temperature") == 4
    r = subprocess.run([sys.executable, "-m", "genfast", "text", "sample", str(tmp_path / "nope.pt")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "model: no such file" in r.stderr


class Killed(Exception):
    pass


def test_resume_after_a_kill_is_bit_exact(corpus, tmp_path):
    """A run killed part way (an exception mid-run, the checkpoint of step 10 left behind) resumes to the
    same weights, history and final file as an uninterrupted run."""
    small = corpus[:20000]
    config = text.TrainConfig(window=20, step=5, batch_size=16, embedding_dim=8, hidden_size=16, num_layers=1,
                              checkpoint_every=10, seed=3, max_steps=25)
    full = text.train_run(small, tmp_path / "a.safetensors", config, progress=False)

    def kill_at_17(step, _):
        if step == 17:
            raise Killed

    with pytest.raises(Killed):
        text.train_run(small, tmp_path / "b.safetensors", config, progress=False, callback=kill_at_17)
    assert not (tmp_path / "b.safetensors").exists()
    resumed = text.train_run(small, tmp_path / "b.safetensors", config, progress=False)
    assert resumed.start_step == 10
    assert [{k: v for k, v in r.items() if k != "time"} for r in resumed.history] == \
        [{k: v for k, v in r.items() if k != "time"} for r in full.history]
    for a, b in zip(resumed.model.parameters(), full.model.parameters()):
        assert torch.equal(a, b)
    ma, va = text.load(tmp_path / "a.safetensors")
    mb, vb = text.load(tmp_path / "b.safetensors")
    assert va.chars == vb.chars and all(torch.equal(x, y) for x, y in zip(ma.parameters(), mb.parameters()))
    with pytest.raises(ValueError, match="different configuration.*lr: 0.002 -> 0.01"):
        text.train_run(small, tmp_path / "b.safetensors", text.TrainConfig(**{**config.__dict__, "lr": 1e-2}),
                       progress=False)


def test_older_checkpoints_still_sample_and_say_how_to_train_on(corpus, tmp_path):
    """A text checkpoint of genfast before genfast.training (model + state in one .pt, plain types only)
    still loads for sampling; training into it asks for --no-resume instead of overwriting it."""
    from genfast.nn import CharLSTM

    vocab = text.Vocabulary.from_text(corpus)
    model = CharLSTM(len(vocab), 8, 16, 1)
    old = tmp_path / "old.pt"
    torch.save({"model": model.state_dict(), "optimizer": torch.optim.Adam(model.parameters()).state_dict(),
                "vocab": vocab.to_dict(), "config": {"window": 20}, "model_config": model.config(), "step": 5,
                "history": [], "rng": torch.get_rng_state()}, old)
    loaded, v = text.load(old)
    assert v.chars == vocab.chars and all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters()))
    with pytest.raises(ValueError, match="older genfast.*--no-resume"):
        text.train(corpus, old, text.TrainConfig(max_steps=1, hidden_size=16, embedding_dim=8, num_layers=1),
                   progress=False)
