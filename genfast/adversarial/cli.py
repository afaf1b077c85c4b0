"""`genfast adversarial train|attack|eval`."""

from __future__ import annotations

from genfast.adversarial.attack import TUTORIAL_EPSILONS
from genfast.adversarial.train import AdversarialConfig, TrainConfig
from genfast.cli import command, group
from genfast.cli.types import (add_device, add_training, non_negative, non_negative_int, positive, positive_int,
                               unit_interval)

DATA_HELP = "a folder of MNIST-format IDX files (e.g. ../shared/data/fashion-mnist) or OpenCV's digits PNG"


def register(sub) -> None:
    verbs = group(sub, "adversarial", help="FGSM and PGD adversarial examples, adversarial training")
    d, a = TrainConfig(), AdversarialConfig()

    t = command(verbs, "train", run_train, help="train a classifier, normally or adversarially (--adversarial)")
    t.add_argument("--data", required=True, help=DATA_HELP)
    t.add_argument("--out", required=True, help="the trained classifier (.safetensors)")
    t.add_argument("--arch", choices=("lenet", "material_cnn"), default=d.arch)
    t.add_argument("--epochs", type=positive_int, default=d.epochs)
    t.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    t.add_argument("--lr", type=positive, default=d.lr)
    t.add_argument("--optimizer", choices=("adam", "adadelta"), default=d.optimizer)
    t.add_argument("--limit", type=positive_int, help="train on the first N images only")
    g = t.add_argument_group("adversarial training (each batch: J signed steps of eps2 within a delta-ball)")
    g.add_argument("--adversarial", action="store_true", help="train on the perturbed batches")
    g.add_argument("--steps", type=positive_int, default=a.steps, help=f"J (default {a.steps}: FGSM training)")
    g.add_argument("--step-size", type=positive, default=a.step_size, help=f"eps2 (default {a.step_size})")
    g.add_argument("--eps", type=positive, default=a.eps, help=f"delta, the radius (default {a.eps})")
    g.add_argument("--random-start", action="store_true", help="start each batch from x + uniform noise in the ball")
    g.add_argument("--clean-weight", type=unit_interval, default=a.clean_weight, metavar="ALPHA",
                   help="train on ALPHA * clean loss + (1 - ALPHA) * adversarial loss (Goodfellow et al.: 0.5; "
                        f"default {a.clean_weight:g}: the adversarial batch alone)")
    add_training(t, checkpoint_every=d.checkpoint_every, log_every=50)

    s = command(verbs, "attack", run_attack, help="the FGSM epsilon sweep: table, plot, example grid")
    s.add_argument("model", help="a classifier written by `genfast adversarial train`")
    s.add_argument("--data", required=True, help=DATA_HELP)
    s.add_argument("--split", choices=("train", "test"), default="test")
    s.add_argument("--limit", type=positive_int, help="the first N images only")
    s.add_argument("--eps", type=non_negative, nargs="+", default=list(TUTORIAL_EPSILONS))
    s.add_argument("--plot", metavar="PNG", help="accuracy against epsilon")
    s.add_argument("--examples", metavar="PNG", help="adversarial examples per epsilon with their new labels")
    s.add_argument("--json", metavar="PATH", help="the table as JSON")
    s.add_argument("--batch-size", type=positive_int, default=1000)
    add_device(s)

    e = command(verbs, "eval", run_eval, help="clean and robust accuracy under FGSM and PGD, for one or more models")
    e.add_argument("models", nargs="+", metavar="MODEL")
    e.add_argument("--data", required=True, help=DATA_HELP)
    e.add_argument("--split", choices=("train", "test"), default="test")
    e.add_argument("--limit", type=positive_int, help="the first N images only")
    e.add_argument("--eps", type=non_negative, nargs="+", default=[0.05, 0.1, 0.2])
    e.add_argument("--pgd-steps", type=positive_int, default=10)
    e.add_argument("--seed", type=non_negative_int, default=0, help="PGD's random start")
    e.add_argument("--plot", metavar="PNG", help="accuracy against epsilon, FGSM and PGD, every model")
    e.add_argument("--json", metavar="PATH", help="the reports as JSON")
    add_device(e)


def run_train(args) -> int:
    from genfast import adversarial
    from genfast.io import check_output

    check_output(args.out, {"data": args.data})
    images, labels, classes = adversarial.labelled_images(args.data, "train", limit=args.limit)
    val_images, val_labels, _ = adversarial.labelled_images(args.data, "test", limit=2000)
    adv = (AdversarialConfig(steps=args.steps, step_size=args.step_size, eps=args.eps, random_start=args.random_start,
                             clean_weight=args.clean_weight)
           if args.adversarial else None)
    config = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, seed=args.seed, checkpoint_every=args.checkpoint_every,
                         adversarial=adv)
    result = adversarial.train(images, labels, args.out, config, val=(val_images, val_labels), classes=classes,
                               resume=not args.no_resume, progress=not args.quiet, device=args.device,
                               checkpoint=args.checkpoint, log_every=args.log_every, log_dir=args.log_dir)
    if result.output is None:
        return 0
    last = result.history[-1] if result.history else {}
    resumed = f" (resumed at step {result.start_step})" if result.start_step else ""
    how = (f"adversarially (J={adv.steps}, eps2={adv.step_size:g}, delta={adv.eps:g}"
           f"{', random start' if adv.random_start else ''}"
           f"{f', clean weight {adv.clean_weight:g}' if adv.clean_weight else ''})" if adv else "normally")
    print(f"wrote {result.output}: {args.arch} trained {how}, step {result.steps}{resumed} in {result.seconds:.0f} s"
          + (f", accuracy {last['val_accuracy']:.2%} on {len(val_images)} test images" if last else "")
          + f"; checkpoint {result.checkpoint}, metrics {result.metrics}")
    return 0


def _load(args, path):
    from genfast import adversarial
    from genfast.checks import check_device

    return adversarial.load_classifier(path, device=check_device(args.device), name="model")


def _outputs(args, inputs: dict) -> None:
    from genfast.io import check_output

    for name in ("plot", "examples", "json"):
        if getattr(args, name, None):
            check_output(getattr(args, name), inputs, name=name)


def run_attack(args) -> int:
    from genfast import adversarial, io
    from genfast.adversarial.data import as_float

    _outputs(args, {"model": args.model, "data": args.data})
    model = _load(args, args.model)
    images, labels, classes = adversarial.labelled_images(args.data, args.split, limit=args.limit)
    device = next(model.parameters()).device
    sweep = adversarial.fgsm_sweep(model, as_float(images).to(device), labels.to(device), args.eps,
                                   batch_size=args.batch_size)
    print(f"{args.model}: FGSM on {sweep.n} {args.split} images (one gradient per image, every epsilon from it)")
    print(sweep.table())
    if args.plot:
        print(f"wrote {adversarial.sweep_plot(sweep, args.plot)}")
    if args.examples:
        print(f"wrote {adversarial.examples_grid(sweep, args.examples, classes=model.classes or classes)}")
    if args.json:
        print(f"wrote {io.write_json(args.json, sweep.as_dict())}")
    return 0


def run_eval(args) -> int:
    from genfast import adversarial, io
    from genfast.adversarial.data import as_float

    _outputs(args, {"models": args.models, "data": args.data})
    images, labels, _ = adversarial.labelled_images(args.data, args.split, limit=args.limit)
    reports = {}
    for path in args.models:
        model = _load(args, path)
        device = next(model.parameters()).device
        report = adversarial.evaluate(model, as_float(images).to(device), labels.to(device), args.eps,
                                      pgd_steps=args.pgd_steps, seed=args.seed)
        reports[path] = report
        print(adversarial.table(report, path))
        for line in adversarial.catastrophic_overfitting(report):
            print(f"{path}: {line}")
    if len(args.models) == 2 and 0.1 in args.eps:
        (a, ra), (b, rb) = reports.items()
        t = adversarial.robustness_targets(ra, rb, eps=0.1)
        print(f"{b} against {a} at epsilon 0.1: PGD accuracy {t['pgd_gain_points']:+.1f} points (target >= +30: "
              f"{'yes' if t['pgd_gain_at_least_30'] else 'NO'}), clean accuracy {-t['clean_drop_points']:+.1f} "
              f"points (target within 5: {'yes' if t['clean_within_5'] else 'NO'})")
        reports["targets"] = t
    if args.plot:
        curves = {}
        for path, r in reports.items():
            if path != "targets":
                name = path.rsplit("/", 1)[-1].removesuffix(".safetensors")
                curves[f"{name} FGSM"] = r["fgsm"]
                curves[f"{name} PGD-{r['pgd_steps']}"] = r["pgd"]
        print(f"wrote {adversarial.accuracy_plot(args.eps, curves, args.plot, title='robust accuracy')}")
    if args.json:
        print(f"wrote {io.write_json(args.json, reports)}")
    return 0
