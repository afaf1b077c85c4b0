"""`genfast text train` and `genfast text sample`."""

from __future__ import annotations

from genfast.cli import command, group
from genfast.cli.types import add_training, integer, non_negative, positive, positive_int, unit_interval


def register(sub) -> None:
    verbs = group(sub, "text", help="character-level LSTM text generation: train, sample")

    t = command(verbs, "train", run_train, help="train a character LSTM on a UTF-8 text file")
    t.add_argument("corpus", help="a UTF-8 text file, or 'builtin' for CPython's pydoc topics")
    t.add_argument("--out", required=True, help="the trained model (.safetensors; .pt/.pth for a torch file)")
    t.add_argument("--epochs", type=positive_int, default=1)
    t.add_argument("--max-steps", type=positive_int, help="stop after this many optimiser steps")
    t.add_argument("--window", type=positive_int, default=40)
    t.add_argument("--step", type=positive_int, default=3)
    t.add_argument("--batch-size", type=positive_int, default=64)
    t.add_argument("--lr", type=positive, default=2e-3)
    t.add_argument("--embedding-dim", type=positive_int, default=64)
    t.add_argument("--hidden-size", type=positive_int, default=256)
    t.add_argument("--num-layers", type=positive_int, default=2)
    add_training(t, checkpoint_every=200, every_step_at_least=1)   # checkpoints are also the validation points

    s = command(verbs, "sample", run_sample, help="generate text from a trained model")
    s.add_argument("model", help="a model written by `genfast text train`")
    s.add_argument("--prime", default="\n", help="text to start from")
    s.add_argument("--temperature", type=non_negative, nargs="+", default=[0.2, 0.5, 1.0])
    s.add_argument("--length", type=positive_int, default=400)
    s.add_argument("--num", type=positive_int, default=1, help="samples per temperature")
    s.add_argument("--top-k", type=integer(0))
    s.add_argument("--top-p", type=unit_interval)
    s.add_argument("--seed", type=integer(0))
    s.add_argument("--device", help="cpu, cuda or cuda:N (default: cpu)")


def run_train(args) -> int:
    from genfast import text

    corpus = text.builtin_corpus() if args.corpus == "builtin" else text.read_corpus(args.corpus)
    if args.corpus != "builtin":
        from genfast.io import check_output

        check_output(args.out, {"corpus": args.corpus})
    config = text.TrainConfig(window=args.window, step=args.step, epochs=args.epochs, max_steps=args.max_steps,
                              batch_size=args.batch_size, lr=args.lr, embedding_dim=args.embedding_dim,
                              hidden_size=args.hidden_size, num_layers=args.num_layers,
                              checkpoint_every=args.checkpoint_every, seed=args.seed)
    result = text.train_run(corpus, args.out, config, resume=not args.no_resume, progress=not args.quiet,
                            device=args.device, checkpoint=args.checkpoint, log_every=args.log_every,
                            log_dir=args.log_dir)
    if result.output is None:       # a rank other than 0 under torchrun
        return 0
    last = result.history[-1] if result.history else {}
    resumed = f" (resumed at step {result.start_step})" if result.start_step else ""
    print(f"wrote {result.output}: {len(result.info['vocab'])} characters, step {result.steps}{resumed}"
          + (f", validation {last['val_bpc']:.3f} bits/char" if last else "")
          + f"; checkpoint {result.checkpoint}, metrics {result.metrics}")
    return 0


def run_sample(args) -> int:
    import torch

    from genfast import text
    from genfast.checks import check_device

    model, vocab = text.load(args.model, device=check_device(args.device or "cpu"))
    gen = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    for t in args.temperature:
        samples = text.generate(model, vocab, args.prime, length=args.length, temperature=t, num=args.num,
                                top_k=args.top_k, top_p=args.top_p, generator=gen)
        for i, sample in enumerate(samples):
            print(f"--- temperature {t} sample {i + 1}")
            print(args.prime + sample)
    return 0
