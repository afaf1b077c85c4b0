"""pytorch/examples' VAE (vae/main.py) as it is written there: the plain implementation that
genfast.latent's VAE target is measured against (same algorithm: 784-400-20, Adam 1e-3, batch 128,
BCE summed + KL, the test loss being the mean over the test images of BCE + KL with a sampled z).

The only changes: the data is a tensor of images instead of a torchvision DataLoader (a seeded
permutation per epoch plays its shuffle), and the loop is a function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn, optim


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def train_plain(images: torch.Tensor, epochs: int, *, seed: int = 1, batch_size: int = 128, log=print) -> VAE:
    """images: float (N, 1, 28, 28) in [0, 1]."""
    torch.manual_seed(seed)
    model = VAE()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        model.train()
        train_loss = 0.0
        for idx in torch.randperm(len(images)).split(batch_size):
            data = images[idx]
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        log(f"====> Epoch: {epoch} Average loss: {train_loss / len(images):.4f}")
    return model


@torch.no_grad()
def test_loss(model: VAE, images: torch.Tensor, *, batch_size: int = 128) -> float:
    model.eval()
    total = 0.0
    for data in images.split(batch_size):
        recon_batch, mu, logvar = model(data)
        total += loss_function(recon_batch, data, mu, logvar).item()
    return total / len(images)
