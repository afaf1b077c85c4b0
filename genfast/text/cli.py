"""`genfast text train` and `genfast text sample`."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("text", help="character-level LSTM text generation: train, sample")
    tsub = p.add_subparsers(dest="text_command", required=True)

    t = tsub.add_parser("train", help="train a character LSTM on a UTF-8 text file")
    t.add_argument("corpus", help="a UTF-8 text file, or 'builtin' for CPython's pydoc topics")
    t.add_argument("--out", required=True, help="checkpoint path (written atomically; resumed if present)")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    t.add_argument("--window", type=int, default=40)
    t.add_argument("--step", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--embedding-dim", type=int, default=64)
    t.add_argument("--hidden-size", type=int, default=256)
    t.add_argument("--num-layers", type=int, default=2)
    t.add_argument("--checkpoint-every", type=int, default=200)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-resume", action="store_true", help="start over even if --out exists")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=run_train)

    s = tsub.add_parser("sample", help="generate text from a trained checkpoint")
    s.add_argument("model", help="checkpoint written by `genfast text train`")
    s.add_argument("--prime", default="\n", help="text to start from")
    s.add_argument("--temperature", type=float, nargs="+", default=[0.2, 0.5, 1.0])
    s.add_argument("--length", type=int, default=400)
    s.add_argument("--num", type=int, default=1, help="samples per temperature")
    s.add_argument("--top-k", type=int)
    s.add_argument("--top-p", type=float)
    s.add_argument("--seed", type=int)
    s.set_defaults(func=run_sample)


def run_train(args) -> int:
    from genfast import text

    try:
        corpus = text.builtin_corpus() if args.corpus == "builtin" else text.read_corpus(args.corpus)
        config = text.TrainConfig(window=args.window, step=args.step, epochs=args.epochs, max_steps=args.max_steps,
                                  batch_size=args.batch_size, lr=args.lr, embedding_dim=args.embedding_dim,
                                  hidden_size=args.hidden_size, num_layers=args.num_layers,
                                  checkpoint_every=args.checkpoint_every, seed=args.seed)
        _, vocab, history = text.train(corpus, args.out, config, resume=not args.no_resume, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as e:
        print(f"genfast text train: {e}", file=sys.stderr)
        return 2
    last = history[-1] if history else {}
    print(f"wrote {args.out}: {len(vocab)} characters"
          + (f", step {last['step']}, validation {last['val_bpc']:.3f} bits/char" if last else ""))
    return 0


def run_sample(args) -> int:
    import torch

    from genfast import text

    try:
        model, vocab = text.load(args.model)
        gen = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
        for t in args.temperature:
            samples = text.generate(model, vocab, args.prime, length=args.length, temperature=t, num=args.num,
                                    top_k=args.top_k, top_p=args.top_p, generator=gen)
            for i, sample in enumerate(samples):
                print(f"--- temperature {t} sample {i + 1}")
                print(args.prime + sample)
    except (ValueError, FileNotFoundError) as e:
        print(f"genfast text sample: {e}", file=sys.stderr)
        return 2
    return 0
