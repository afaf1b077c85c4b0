"""The FGSM epsilon sweep: the PyTorch tutorial's loop (one image at a time, a gradient per epsilon)
vs genfast.adversarial.fgsm_sweep (one batched gradient per image, every epsilon evaluated from it).

Shapes are (N images,), the tutorial's seven epsilons, a LeNet (the tutorial's) with the weights it
is given (random for `genfast bench`; benchmarks/bench_adversarial.py uses a trained one on the
Fashion-MNIST test set and checks the accuracies agree). There is no native kernel: the speed-up is
the algorithm's (7 x N single-image forward/backward/forward passes become one batched backward and
8 batched forwards). Times are taken in alternating rounds, so both sides see the same machine state.
"""

from __future__ import annotations

import torch

from genfast.adversarial.attack import TUTORIAL_EPSILONS, fgsm_sweep, tutorial_sweep
from genfast.bench.core import Case
from genfast.models.classifiers import classifier

PRIMARY_OP = "fgsm_sweep"
NATIVE = False          # an algorithm's speed-up, no native op
DEFAULT_SHAPES = [(200,), (1000,)]
QUICK_SHAPES = [(50,)]
SHAPE_SIZES = (1,)      # --shape N


def sweep_fns(model, images, labels, epsilons=TUTORIAL_EPSILONS, batch_size: int = 1000) -> dict:
    """{"reference": the tutorial's loop, "batched": fgsm_sweep} on the same inputs."""
    return {"reference": lambda: tutorial_sweep(model, images, labels, epsilons),
            "batched": lambda: fgsm_sweep(model, images, labels, epsilons, batch_size=batch_size)}


def cases(device: torch.device, shapes=None, compile: bool = True) -> list[Case]:
    torch.manual_seed(0)
    model = classifier("lenet").to(device).eval()
    out = []
    for (n,) in shapes or DEFAULT_SHAPES:
        images = torch.rand(n, 1, 28, 28, device=device)
        with torch.no_grad():
            labels = model(images).argmax(1)
        out.append(Case(op=PRIMARY_OP, shape=(n,), mode="forward+backward", fns=sweep_fns(model, images, labels),
                        interleave=True))
    return out


__all__ = ["PRIMARY_OP", "DEFAULT_SHAPES", "QUICK_SHAPES", "SHAPE_SIZES", "cases", "sweep_fns"]
