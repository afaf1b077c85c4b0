"""The material's lesson as a runnable demo: a tiny autoencoder (one dense layer to 20 values, one
back) trained on a single 100 x 100 photo "compresses" it to 20 numbers — yet it returns the same
photo from any input, a black image or another photo. It memorised the photo, in its biases: for an
input whose code is all zeros after the ReLU, the output is sigmoid(decoder bias), and training put
the photo there.

    model, rows, labels = memorisation(photo, {"black": zeros, "other photo": other})
"""

from __future__ import annotations

import torch

from genfast.checks import ArgumentError, check_int, check_number, check_tensor
from genfast.latent.losses import reconstruction
from genfast.latent.networks import build


def memorisation(photo: torch.Tensor, probes: dict, *, steps: int = 200, lr: float = 1e-2, latent: int = 20,
                 seed: int = 0):
    """Train a TinyAE on `photo` (1, C, H, W) in [0, 1] alone, then run it on the photo and on each
    probe (same shape). Returns (model, [inputs, outputs, |difference|] each (K, C, H, W), the names
    of the K columns)."""
    check_tensor(photo, "photo", dims=(4,), shape="(1, C, H, W)", floating=True)
    check_int(steps, "steps", 1)
    check_number(lr, "lr", positive=True)
    for name, p in probes.items():
        if not isinstance(p, torch.Tensor) or p.shape != photo.shape:
            raise ArgumentError("probes", f"expected {name!r} of the photo's shape {tuple(photo.shape)}, got "
                                          f"{tuple(getattr(p, 'shape', ()))}")
    torch.manual_seed(seed)
    model = build("tiny", tuple(photo.shape[1:]), latent)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = reconstruction(model(photo), photo)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    inputs = torch.cat([photo, *probes.values()])
    outputs = model.reconstruct(inputs)
    return model, [inputs, outputs, (outputs - inputs).abs()], ["the photo", *probes]


__all__ = ["memorisation"]
