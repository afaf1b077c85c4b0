"""The material's three pictures, each a function that writes one PNG and returns (path, summary).

- bilinear_game: min_x max_y x*y. Simultaneous gradient steps spiral outwards, alternating steps
  circle round the equilibrium (0, 0): neither converges, which is what GAN training can do.
- parallel_lines: P0 on the line x = 0, P_theta on x = theta (both uniform in y). JS(P0, P_theta)
  jumps to log 2 for every theta != 0, the Wasserstein distance is |theta|; a WGAN-GP critic trained
  for each theta estimates it.
- optimal_discriminator: for 1-D Gaussians p* and p_G, D*(x) = p*(x) / (p*(x) + p_G(x)), against
  a discriminator trained with the minimax loss.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from genfast import io
from genfast.checks import check_int
from genfast.gan import losses


def _figure(ncols: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(3.6 * ncols, 3.2), dpi=90)
    return plt, fig, axes


def _save(plt, fig, path) -> Path:
    return io.save_figure(fig, path)


def bilinear_trajectories(steps: int = 200, lr: float = 0.1, start=(1.0, 1.0)) -> dict:
    """(x, y) paths of gradient descent on x / ascent on y for f = x y, simultaneous and alternating."""
    paths = {}
    for mode in ("simultaneous", "alternating"):
        x, y = start
        path = [(x, y)]
        for _ in range(steps):
            if mode == "simultaneous":
                x, y = x - lr * y, y + lr * x
            else:
                x = x - lr * y
                y = y + lr * x
            path.append((x, y))
        paths[mode] = path
    return paths


def bilinear_game(out, *, steps: int = 200, lr: float = 0.1, seed: int = 0) -> tuple[Path, str]:
    check_int(steps, "steps", 1)
    paths = bilinear_trajectories(steps, lr)
    plt, fig, ax = _figure()
    for mode, path in paths.items():
        xs, ys = zip(*path)
        ax.plot(xs, ys, lw=0.8, label=mode)
    ax.plot([0], [0], "k*", label="equilibrium")
    ax.set_title("min_x max_y xy, gradient steps", fontsize=8)
    ax.legend(fontsize=6)
    ax.set_aspect("equal")
    radius = {m: math.hypot(*p[-1]) for m, p in paths.items()}
    return _save(plt, fig, out), (f"distance from (0, 0) after {steps} steps: simultaneous "
                                  f"{radius['simultaneous']:.2f}, alternating {radius['alternating']:.2f} "
                                  f"(start {math.hypot(1, 1):.2f})")


def js_parallel_lines(theta: float) -> float:
    return 0.0 if theta == 0 else math.log(2)


def critic_estimate(theta: float, *, steps: int = 300, seed: int = 0, n: int = 256) -> float:
    """E f(P0) - E f(P_theta) of a small WGAN-GP critic trained on the two lines."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                 torch.nn.Linear(64, 1))
    f = lambda x: critic(x)[:, 0]          # noqa: E731
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))

    def lines():
        y0, y1 = torch.rand(n, 1, generator=g), torch.rand(n, 1, generator=g)
        return torch.cat([torch.zeros(n, 1), y0], 1), torch.cat([torch.full((n, 1), theta), y1], 1)

    for _ in range(steps):
        p0, p1 = lines()
        loss = losses.critic_loss_wgan(f(p0), f(p1)) + losses.gradient_penalty(f, p0, p1, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    p0, p1 = lines()
    with torch.no_grad():
        return abs(float(f(p0).mean() - f(p1).mean()))


def parallel_lines(out, *, steps: int = 300, seed: int = 0, thetas=None) -> tuple[Path, str]:
    check_int(steps, "steps", 1)
    thetas = thetas if thetas is not None else [-1.0, -0.6, -0.3, -0.1, 0.0, 0.1, 0.3, 0.6, 1.0]
    grid = torch.linspace(-1, 1, 201).tolist()
    est = [critic_estimate(t, steps=steps, seed=seed) for t in thetas]
    plt, fig, ax = _figure()
    ax.plot(grid, [js_parallel_lines(t) for t in grid], label="JS divergence")
    ax.plot(grid, [abs(t) for t in grid], label="Wasserstein |theta|")
    ax.plot(thetas, est, "o", ms=3, label="WGAN-GP critic estimate")
    ax.set_xlabel("theta", fontsize=7)
    ax.legend(fontsize=6)
    ax.set_title("parallel lines: JS vs Wasserstein", fontsize=8)
    worst = max(abs(e - abs(t)) for e, t in zip(est, thetas))
    return _save(plt, fig, out), f"critic estimates within {worst:.3f} of |theta| at {len(thetas)} thetas"


def _gauss(x, mu, sd):
    return torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def optimal_discriminator(out, *, steps: int = 2000, seed: int = 0, real=(0.0, 1.0), fake=(1.5, 0.7)) -> tuple[Path, str]:
    """D*(x) = p*(x) / (p*(x) + p_G(x)) for two 1-D Gaussians vs a discriminator trained on samples."""
    check_int(steps, "steps", 1)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    D = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
                            torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(D.parameters(), lr=3e-3)
    for _ in range(steps):
        xr = real[0] + real[1] * torch.randn(256, 1, generator=g)
        xf = fake[0] + fake[1] * torch.randn(256, 1, generator=g)
        loss = losses.d_loss_minimax(D(xr)[:, 0], D(xf)[:, 0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.linspace(-3, 4, 300)[:, None]
    pr, pf = _gauss(x, *real)[:, 0], _gauss(x, *fake)[:, 0]
    d_star = pr / (pr + pf)
    with torch.no_grad():
        d = torch.sigmoid(D(x))[:, 0]
    inside = (pr + pf) > 0.05                 # where there are samples to learn from
    err = float((d - d_star)[inside].abs().max())
    plt, fig, ax = _figure()
    ax.plot(x[:, 0], pr, label="p* (data)")
    ax.plot(x[:, 0], pf, label="p_G")
    ax.plot(x[:, 0], d_star, "k", label="D* = p*/(p*+p_G)")
    ax.plot(x[:, 0], d, "--", label="trained D")
    ax.legend(fontsize=6)
    ax.set_title("the optimal discriminator", fontsize=8)
    return _save(plt, fig, out), f"trained D within {err:.3f} of D* where p* + p_G > 0.05"


__all__ = ["bilinear_trajectories", "bilinear_game", "js_parallel_lines", "critic_estimate", "parallel_lines",
           "optimal_discriminator"]
