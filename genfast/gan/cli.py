"""`genfast gan train|sample|eval|interpolate|demo`."""

from __future__ import annotations

from genfast.cli import command, group
from genfast.cli.types import add_training, integer, non_negative, non_negative_int, number, positive, positive_int

DEMOS = ("bilinear", "parallel-lines", "optimal-d")


def register(sub) -> None:
    from genfast.gan.losses import LOSSES
    from genfast.gan.networks import ARCHS, NORMS
    from genfast.gan.train import OPTIMIZERS, GANConfig

    d = GANConfig()
    verbs = group(sub, "gan", help="GANs: minimax, non-saturating, WGAN, WGAN-GP; mode-collapse measures")

    t = command(verbs, "train", run_train, help="train a GAN (k D steps, then one G step)",
                description="Options left unset take the data's recipe (ring8, grid25, fashion-mnist: genfast's "
                            "recommended settings, genfast.gan.train.RECIPES) or else the loss's paper defaults (DCGAN: Adam 2e-4, (0.5, 0.999); WGAN: "
                            "RMSprop 5e-5, clip 0.01, k 5; WGAN-GP: Adam 1e-4, (0.5, 0.9), k 5, lambda 10).")
    t.add_argument("--data", required=True, help="ring8, grid25, fashion-mnist, digits, or a folder of images")
    t.add_argument("--data-root", help="fashion-mnist: the IDX folder; digits: digits.png or its folder "
                                       "(default ../shared/data/fashion-mnist, ../shared/data/digits)")
    t.add_argument("--loss", choices=LOSSES, help="default: the recipe's, else nonsaturating")
    t.add_argument("--no-recipe", action="store_true", help="ignore the data's recipe: plain paper defaults")
    t.add_argument("--out", required=True, help="the generator (.safetensors)")
    t.add_argument("--steps", type=positive_int, help="generator steps")
    t.add_argument("--batch-size", type=integer(2))
    t.add_argument("--k", type=positive_int, help="D / critic steps per G step")
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--lr-d", type=positive)
    t.add_argument("--lr-g", type=positive)
    t.add_argument("--betas", type=number(0.0, below=1.0), nargs=2, metavar=("B1", "B2"))
    t.add_argument("--lr-end", type=number(0.0, high=1.0), help="learning rates fall linearly to lr * this")
    t.add_argument("--clip", type=non_negative, help="WGAN weight clip c (default 0.01 for wgan)")
    t.add_argument("--gp-weight", "--lambda", dest="gp_weight", type=non_negative, help="WGAN-GP lambda (default 10)")
    t.add_argument("--r1", type=non_negative, help="R1 gamma on real data (0: off)")
    t.add_argument("--ema", type=number(0.0, below=1.0), help="generator EMA decay (0: off)")
    t.add_argument("--arch", choices=ARCHS, help="mlp or dcgan (default: mlp for mixtures, dcgan for images)")
    t.add_argument("--z-dim", type=positive_int)
    t.add_argument("--latent-mixture", type=non_negative_int, metavar="K",
                   help="G's input: a mixture of K Gaussians in z-dim - 1 dimensions instead of one (0: off)")
    t.add_argument("--latent-std", type=positive, help="the mixture components' standard deviation (default 0.1)")
    t.add_argument("--g-hidden", type=positive_int, default=d.g_hidden)
    t.add_argument("--g-layers", type=positive_int, default=d.g_layers)
    t.add_argument("--d-hidden", type=positive_int, default=d.d_hidden)
    t.add_argument("--d-layers", type=positive_int, default=d.d_layers)
    t.add_argument("--width", type=positive_int, default=d.width, help="dcgan channel base")
    t.add_argument("--g-norm", choices=("batch", "none"), default=d.g_norm, help="G normalisation (default batch)")
    t.add_argument("--norm", choices=NORMS, help="D normalisation (default: batch; layer for wgan-gp; none in an MLP)")
    t.add_argument("--minibatch-stddev", type=non_negative_int, nargs="?", const=4, metavar="GROUP",
                   help="minibatch stddev in D with this group size (4 when given alone; 0: off)")
    t.add_argument("--mbstd-channels", type=positive_int, default=d.mbstd_channels)
    t.add_argument("--minibatch-discrimination", dest="minibatch_disc", type=non_negative_int, nargs="?", const=16,
                   default=d.minibatch_disc, metavar="B", help="minibatch discrimination with B features (16 alone)")
    t.add_argument("--mbdisc-dims", type=positive_int, default=d.mbdisc_dims)
    t.add_argument("--pack", type=positive_int, default=d.pack, help="PacGAN: D judges N samples at once")
    t.add_argument("--image-size", type=int, choices=(28, 64))
    t.add_argument("--limit", type=positive_int, help="train on the first N images only")
    t.add_argument("--sample-every", type=non_negative_int, default=500,
                   help="a sample sheet from fixed noise every N steps into <out stem>.samples/ (default 500)")
    t.add_argument("--amp", action="store_true",
                   help="mixed precision: float16 autocast with a gradient scaler on CUDA, bfloat16 on the CPU "
                        "(slower than float32 on CPUs without bfloat16 instructions)")
    add_training(t, checkpoint_every=1000, log_every=50)

    s = command(verbs, "sample", run_sample, help="draw samples: an image sheet / scatter plot, or .npy")
    s.add_argument("generator", help="a generator written by `genfast gan train`")
    s.add_argument("--num", type=positive_int, default=64)
    s.add_argument("--out", required=True, help="grid.png (scatter plot for 2-D data) or samples.npy (raw values)")
    s.add_argument("--seed", type=non_negative_int, default=0)

    e = command(verbs, "eval", run_eval, help="mode-collapse metrics (mixtures), Fréchet distance and class "
                                              "coverage (images), as JSON")
    e.add_argument("generator")
    e.add_argument("--num", type=positive_int, help="samples (default 2500 for mixtures, 10000 for images)")
    e.add_argument("--seed", type=non_negative_int, default=0)
    e.add_argument("--classifier", help="images: a classifier from genfast's fit_classifier (its features and "
                                        "classes are the metric's space)")
    e.add_argument("--data-root", help="images: where the real test images are (as for train)")
    e.add_argument("--json", metavar="PATH", help="also write the report here")

    i = command(verbs, "interpolate", run_interpolate, help="latent walks as an image sheet (or paths for 2-D)")
    i.add_argument("generator")
    i.add_argument("--out", required=True)
    i.add_argument("--rows", type=positive_int, default=8)
    i.add_argument("--steps", type=integer(2), default=10)
    i.add_argument("--seed", type=non_negative_int, default=0)
    i.add_argument("--linear", action="store_true", help="straight lines instead of slerp")

    m = command(verbs, "demo", run_demo, help="the material's pictures: bilinear game, parallel lines, optimal D")
    m.add_argument("demo", choices=DEMOS)
    m.add_argument("--out", required=True, help="the PNG to write")
    m.add_argument("--seed", type=non_negative_int, default=0)
    m.add_argument("--steps", type=positive_int, help="training steps of the demo's critic / discriminator")


def _data_root(data: str, given):
    if given is not None or data not in ("fashion-mnist", "digits"):
        return given
    return {"fashion-mnist": "../shared/data/fashion-mnist", "digits": "../shared/data/digits"}[data]


def run_train(args) -> int:
    import warnings

    from genfast.gan.train import GANConfig, train_gan

    config = GANConfig(
        data=args.data, loss=args.loss, recipe=not args.no_recipe, steps=args.steps, batch_size=args.batch_size,
        k=args.k, optimizer=args.optimizer, lr_d=args.lr_d, lr_g=args.lr_g,
        betas=tuple(args.betas) if args.betas else None, lr_end=args.lr_end, clip=args.clip,
        gp_weight=args.gp_weight, r1=args.r1, ema=args.ema, arch=args.arch, z_dim=args.z_dim,
        latent_mixture=args.latent_mixture, latent_std=args.latent_std,
        g_hidden=args.g_hidden, g_layers=args.g_layers, d_hidden=args.d_hidden, d_layers=args.d_layers,
        width=args.width, g_norm=args.g_norm, norm=args.norm, minibatch_stddev=args.minibatch_stddev,
        mbstd_channels=args.mbstd_channels, minibatch_disc=args.minibatch_disc, mbdisc_dims=args.mbdisc_dims,
        pack=args.pack, image_size=args.image_size, data_root=_data_root(args.data, args.data_root),
        limit=args.limit, seed=args.seed, checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
        amp=args.amp)
    with warnings.catch_warnings():
        warnings.simplefilter("always", RuntimeWarning)      # the collapse monitor speaks every run
        result = train_gan(config, args.out, resume=not args.no_resume, progress=not args.quiet,
                           device=args.device, checkpoint_path=args.checkpoint, log_every=args.log_every,
                           log_dir=args.log_dir)
    if result.output is None:       # a rank other than 0 under torchrun
        return 0
    resumed = f" (resumed at step {result.start_step})" if result.start_step else ""
    mix = result.info.get("mixture")
    extra = (f"; {mix['modes']}/{mix['num_modes']} modes, {100 * mix['high_quality']:.1f} % high quality, "
             f"reverse KL {mix['reverse_kl']:.3f}" if mix else "")
    print(f"wrote {result.output}: step {result.steps}{resumed}, {result.seconds:.0f} s{extra}; checkpoint "
          f"{result.checkpoint}, metrics {result.metrics}")
    return 0


def run_sample(args) -> int:
    from genfast.gan.sample import load_generator, sample, save_samples
    from genfast.io import check_output

    check_output(args.out, {"generator": args.generator}, name="out")
    G, cfg = load_generator(args.generator)
    path = save_samples(sample(G, args.num, seed=args.seed), args.out, data=cfg.get("data"))
    print(f"wrote {path}: {args.num} samples")
    return 0


def run_eval(args) -> int:
    import json

    from genfast import io
    from genfast.gan.metrics import evaluate

    if args.json:
        io.check_output(args.json, {"generator": args.generator, "classifier": args.classifier}, name="json")
    report = evaluate(args.generator, num=args.num, seed=args.seed, classifier=args.classifier,
                      data_root=args.data_root)
    if args.json:
        io.write_json(args.json, report)
    print(json.dumps(report, indent=2))
    return 0


def run_interpolate(args) -> int:
    from genfast.gan.sample import interpolate, load_generator
    from genfast.io import check_output

    check_output(args.out, {"generator": args.generator}, name="out")
    G, cfg = load_generator(args.generator)
    path = interpolate(G, args.out, rows=args.rows, steps=args.steps, seed=args.seed, spherical=not args.linear,
                       data=cfg.get("data"))
    print(f"wrote {path}")
    return 0


def run_demo(args) -> int:
    from genfast.gan import demos

    fn = {"bilinear": demos.bilinear_game, "parallel-lines": demos.parallel_lines,
          "optimal-d": demos.optimal_discriminator}[args.demo]
    kwargs = {"seed": args.seed}
    if args.steps is not None:
        kwargs["steps"] = args.steps
    path, summary = fn(args.out, **kwargs)
    print(f"wrote {path}: {summary}")
    return 0
