"""`genfast latent train|plot|sample`."""

from __future__ import annotations

from genfast.cli import command, group
from genfast.cli.types import add_device, add_training, integer, non_negative, positive, positive_int
from genfast.latent.networks import MODELS
from genfast.latent.train import TrainConfig

DATA_HELP = "a folder of MNIST-format IDX files (e.g. ../shared/data/fashion-mnist) or OpenCV's digits PNG"
PICTURES = ("scatter", "manifold", "interpolate", "reconstruct", "resample", "denoise", "memorise")


def register(sub) -> None:
    verbs = group(sub, "latent", help="autoencoders, VAEs and denoising: train, plot, sample")
    d = TrainConfig()

    t = command(verbs, "train", run_train, help="train an autoencoder or a VAE on 28 x 28 images")
    t.add_argument("--data", required=True, help=DATA_HELP)
    t.add_argument("--out", required=True, help="the trained model (.safetensors)")
    t.add_argument("--kind", choices=tuple(MODELS), default=d.kind,
                   help="tiny (784-20-784), dense, conv (3x7x7 bottleneck), denoising (32x7x7), vae, conv_vae")
    t.add_argument("--latent", type=positive_int, help="code size (bottleneck channels for conv, denoising)")
    t.add_argument("--epochs", type=positive_int, default=d.epochs)
    t.add_argument("--max-steps", type=positive_int)
    t.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    t.add_argument("--lr", type=positive, default=d.lr)
    t.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default=d.likelihood)
    t.add_argument("--sigma", type=positive, default=d.sigma, help="the Gaussian likelihood's standard deviation")
    t.add_argument("--beta", type=non_negative, default=d.beta, help="the KL weight of a VAE (default 1)")
    t.add_argument("--free-bits", type=non_negative, default=d.free_bits,
                   help="VAEs: nats per latent the KL objective does not go below (default: 0.5 for the "
                        "autoregressive conv_vae, else 0)")
    t.add_argument("--no-autoregressive", dest="autoregressive", action="store_false",
                   help="conv_vae: the factorised decoder instead of the PixelVAE one (one masked 3x3 layer)")
    t.add_argument("--noise", choices=("gaussian", "salt_pepper"), default=d.noise, help="the denoising AE's noise")
    t.add_argument("--noise-factor", type=non_negative, default=d.noise_factor)
    t.add_argument("--limit", type=positive_int, help="train on the first N images only")
    add_training(t, checkpoint_every=d.checkpoint_every, log_every=50)

    s = command(verbs, "sample", run_sample, help="decode samples from a VAE's prior into a PNG sheet")
    s.add_argument("model")
    s.add_argument("--out", required=True, help="PNG")
    s.add_argument("--n", type=positive_int, default=64)
    s.add_argument("--seed", type=integer(0), default=0)
    add_device(s)

    p = command(verbs, "plot", run_plot, help="pictures: " + ", ".join(PICTURES))
    p.add_argument("what", choices=PICTURES)
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="scatter: one or more models with 2-D codes side by side (e.g. AE then VAE); others: one")
    p.add_argument("--data", help=DATA_HELP + " (its test split)")
    p.add_argument("--out", required=True, help="PNG")
    p.add_argument("--n", type=positive_int, default=8, help="images (pairs for interpolate; grid side for manifold)")
    p.add_argument("--steps", type=positive_int, default=10, help="interpolate: images per row")
    p.add_argument("--points", type=positive_int, default=5000, help="scatter: test images shown")
    p.add_argument("--photo", default="skimage:astronaut", help="memorise: the photo (a file or skimage:NAME)")
    p.add_argument("--other", default="skimage:coffee", help="memorise: another photo given to the trained AE")
    p.add_argument("--seed", type=integer(0), default=0)
    add_device(p)


def _data(path, split, limit=None):
    from genfast.adversarial.data import as_float
    from genfast.data import labelled_images

    images, labels, classes = labelled_images(path, split, limit=limit)
    return as_float(images), labels, classes


def run_train(args) -> int:
    from genfast import latent
    from genfast.io import check_output

    check_output(args.out, {"data": args.data})
    x, _, _ = _data(args.data, "train", args.limit)
    val, _, _ = _data(args.data, "test")
    config = TrainConfig(kind=args.kind, latent=args.latent, epochs=args.epochs, max_steps=args.max_steps,
                         batch_size=args.batch_size, lr=args.lr, likelihood=args.likelihood, sigma=args.sigma,
                         beta=args.beta, free_bits=args.free_bits, autoregressive=args.autoregressive,
                         noise=args.noise, noise_factor=args.noise_factor, seed=args.seed,
                         checkpoint_every=args.checkpoint_every)
    result = latent.train(x, args.out, config, val=val, resume=not args.no_resume, progress=not args.quiet,
                          device=args.device, checkpoint=args.checkpoint, log_every=args.log_every,
                          log_dir=args.log_dir)
    if result.output is None:
        return 0
    last = result.history[-1] if result.history else {}
    what = "negative ELBO" if result.model.variational else "reconstruction loss"
    resumed = f" (resumed at step {result.start_step})" if result.start_step else ""
    print(f"wrote {result.output}: {args.kind}, step {result.steps}{resumed} in {result.seconds:.0f} s"
          + (f"; test {what} {last['val_loss']:.2f} nats per image on {len(val)} images" if "val_loss" in last else "")
          + f"; checkpoint {result.checkpoint}, metrics {result.metrics}")
    return 0


def _load(args, path):
    from genfast import latent
    from genfast.checks import check_device

    return latent.load(path, device=check_device(args.device), name="models")


def run_sample(args) -> int:
    import torch

    from genfast import latent
    from genfast.io import check_output

    check_output(args.out, {"model": args.model}, name="out")
    model = _load(args, args.model)
    device = next(model.parameters()).device
    images = latent.sample_prior(model, args.n, generator=torch.Generator(device=device).manual_seed(args.seed))
    print(f"wrote {latent.image_sheet(images, args.out, title=f'{model.kind}, {model.latent} latents: z ~ N(0, I)')}")
    return 0


def run_plot(args) -> int:
    import torch

    from genfast import io, latent
    from genfast.checks import ArgumentError

    io.check_output(args.out, {"models": args.models, "data": args.data, "photo": args.photo, "other": args.other},
                    name="out")
    if args.what == "memorise":
        photo, other = io.load_image(args.photo, (100, 100), name="photo"), io.load_image(args.other, (100, 100),
                                                                                         name="other")
        _, rows, names = latent.memorisation(photo, {"black": torch.zeros_like(photo), "other photo": other},
                                             seed=args.seed)
        err = [float(rows[2][i].mean()) for i in range(len(names))]
        print("mean |output - input|: " + ", ".join(f"{n} {e:.3f}" for n, e in zip(names, err))
              + f"; mean |output - the photo| for every input: "
              + ", ".join(f"{float((rows[1][i] - photo[0]).abs().mean()):.3f}" for i in range(len(names))))
        print(f"wrote {latent.image_rows(rows, args.out, row_labels=['input', 'output', '|difference|'], scale=1)}")
        return 0
    if not args.models:
        raise ArgumentError("models", f"{args.what} needs a trained model")
    if args.what == "manifold":
        model = _load(args, args.models[0])
        grid = latent.manifold(model, max(2, args.n))
        print(f"wrote {latent.image_sheet(grid, args.out, nrow=max(2, args.n), scale=1, title='decoded over z')}")
        return 0
    if not args.data:
        raise ArgumentError("data", f"{args.what} needs test images (--data)")
    x, labels, classes = _data(args.data, "test")
    if args.what == "scatter":
        panels = {}
        for path in args.models:
            model = _load(args, path)
            name = f"{path.rsplit('/', 1)[-1].removesuffix('.safetensors')} ({model.kind})"
            panels[name] = (latent.latent_codes(model, x[:args.points]), labels[:args.points])
        print(f"wrote {latent.latent_scatter(panels, args.out, classes)}")
        return 0
    model = _load(args, args.models[0])
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(args.seed)
    if args.what == "interpolate":
        args.n = min(args.n, len(x) // 2)        # pairs of distinct test images
        if args.n < 1:
            raise ArgumentError("data", f"interpolate needs at least 2 test images, got {len(x)}")
    pick = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed))[:2 * args.n]].to(device)
    args.n = min(args.n, len(pick))
    if args.what == "interpolate":
        rows = latent.interpolate(model, pick[:args.n], pick[args.n:], args.steps).view(args.n, args.steps, *x.shape[1:])
        out = latent.image_rows(list(rows), args.out, title=f"{model.kind}: decode((1 - t) z_a + t z_b)")
    elif args.what == "reconstruct":
        x_hat = model.reconstruct(pick[:args.n])
        out = latent.image_rows([pick[:args.n], x_hat, (x_hat - pick[:args.n]).abs()], args.out,
                                row_labels=["input", "output", "|difference|"])
    elif args.what == "resample":
        rows = [latent.resample(model, pick[i:i + 1], 10, generator=gen) for i in range(args.n)]
        out = latent.image_rows([torch.cat([pick[i:i + 1], r]) for i, r in enumerate(rows)], args.out,
                                title="input, then 10 decodings of z ~ q(z|x)")
    else:       # denoise
        cfg = getattr(model, "train_config", {}) or {}
        noisy = latent.add_noise(pick[:args.n], cfg.get("noise_factor", 0.5), cfg.get("noise", "gaussian"),
                                 generator=gen)
        out = latent.image_rows([pick[:args.n], noisy, model.reconstruct(noisy)], args.out,
                                row_labels=["clean", "noisy input", "denoised"])
    print(f"wrote {out}")
    return 0
