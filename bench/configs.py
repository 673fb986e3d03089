"""Benchmark configurations: decoders, how they are written, data sizes and the FLOPs of one AIS transition.

All run in float32 with L = 10 leapfrog steps unless a configuration says otherwise (bench/test_gpu.py:
the paper's L = 20), Gaussian NLL with σ² = 0.03 unless ``distortion`` says otherwise. Decoder
weights are PyTorch's default initialisation under a fixed seed; data are uniform in [0, 1)
(binarised at ½ for Bernoulli logits).

``form`` is how a user wrote the decoder that rdfast gets:

    sequential    nn.Sequential(Linear, hidden(), …, Linear, output())
    decode        the ``decode`` method of a VAE module with an encoder (the layout of the most-copied
                  open-source BDMC example: fc layers, the activation as a function in ``decode``)
    vae-decoder   rdfast.apps.models.VAEDecoder: a Sequential inside a module, sigmoid outside it
    dcgan         a DCGAN-style generator: z → 7×7 → 14×14 → 28×28 by transposed convolutions,
                  batch norm (eval mode) and ReLU, sigmoid output
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rdfast.apps.models import VAEDecoder

LOGVAR = math.log(0.03)
LEAPFROG_STEPS = 10
DTYPE = torch.float32


class DecodeVAE(nn.Module):
    """A VAE whose decoder is its ``decode`` method: hidden layers with ``hidden`` applied as a
    function, the last layer with ``output``."""

    def __init__(self, sizes, hidden, output):
        super().__init__()
        data, latent = sizes[-1], sizes[0]
        self.enc = nn.Linear(data, sizes[-2])
        self.enc_mu, self.enc_logvar = nn.Linear(sizes[-2], latent), nn.Linear(sizes[-2], latent)
        self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.hidden, self.output = hidden(), output()

    def encode(self, x):  # [rows, P] -> ([rows, K], [rows, K])
        h = self.hidden(self.enc(x))
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z):  # [rows, K] -> [rows, P]
        h = z
        for layer in self.dec[:-1]:
            h = self.hidden(layer(h))
        return self.output(self.dec[-1](h))


class DCGANGenerator(nn.Module):
    """z [rows, K] → [rows, 1, 28, 28]: ConvT(K, 4c, 7) → BN → ReLU → ConvT(4c, 2c, 4, 2, 1) → BN →
    ReLU → ConvT(2c, 1, 4, 2, 1) → sigmoid."""

    def __init__(self, latent: int, width: int):
        super().__init__()
        c = width
        self.latent = latent
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent, 4 * c, 7, 1, 0, bias=False), nn.BatchNorm2d(4 * c), nn.ReLU(),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, 1, 4, 2, 1), nn.Sigmoid())

    def forward(self, z):
        return self.net(z.view(-1, self.latent, 1, 1))


@dataclass(frozen=True)
class Config:
    """A decoder z [B, sizes[0]] -> x̂ [B, sizes[-1]] written as ``form``, and N items × M chains.

    ``sizes``, ``hidden`` and ``output`` describe the dense layers (for ``dcgan``: the latent, the
    channel width c and the data size; hidden and output unused)."""

    name: str
    sizes: tuple  # layer widths, latent first
    hidden: type  # activation module after each hidden layer
    output: type  # activation module after the last layer
    n_items: int
    n_chains: int
    block: int  # transitions per timed round (an rdfast round adds one initial evaluation: 1/(L·block))
    leapfrog_steps: int = LEAPFROG_STEPS
    distortion: str = "gaussian_nll"
    form: str = "sequential"

    @property
    def rows(self) -> int:
        return self.n_items * self.n_chains

    @property
    def latent_dim(self) -> int:
        return self.sizes[0]

    @property
    def logvar(self):
        """The fixed log-variance passed to rdfast (None for other distortions)."""
        return LOGVAR if self.distortion == "gaussian_nll" else None

    @property
    def mlp_like(self) -> bool:
        return self.form != "dcgan"

    def sequential(self, device="cpu") -> nn.Sequential:
        """The dense layers as a plain nn.Sequential (seeded)."""
        torch.manual_seed(0)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            layers += [nn.Linear(n_in, n_out), self.hidden() if i < len(self.sizes) - 2 else self.output()]
        return nn.Sequential(*layers).to(device=device, dtype=DTYPE).eval().requires_grad_(False)

    def model(self, device="cpu") -> nn.Module:
        """The module holding the decoder's weights (seeded), in eval mode."""
        if self.form == "sequential":
            return self.sequential(device)
        torch.manual_seed(0)
        if self.form == "decode":
            model = DecodeVAE(self.sizes, self.hidden, self.output)
        elif self.form == "vae-decoder":
            model = VAEDecoder(self.sizes[0], self.sizes[-1], hidden=self.sizes[1], depth=len(self.sizes) - 2)
        elif self.form == "dcgan":
            model = DCGANGenerator(self.sizes[0], self.sizes[1])
        else:
            raise ValueError(f"form: unknown {self.form!r}")
        return model.to(device=device, dtype=DTYPE).eval().requires_grad_(False)

    def decoder(self, device="cpu"):
        """What rdfast (and every provider) calls: the module, or its ``decode`` method."""
        model = self.model(device)
        return model.decode if self.form == "decode" else model

    def data(self, device="cpu") -> torch.Tensor:
        x = torch.rand(self.n_items, self.sizes[-1], generator=torch.Generator().manual_seed(1), dtype=DTYPE)
        if self.distortion == "bernoulli_nll":
            x = (x > 0.5).to(DTYPE)
        return x.to(device)

    @functools.cache
    def flops_per_transition(self) -> int:
        """FLOPs of L decoder forwards and L input-gradient backwards on B rows (torch's FLOP
        counter; for dense layers 2 · 2 · B · Σ_l in_l · out_l per step)."""
        decoder = self.decoder("meta")  # shapes only: nothing is computed
        z = torch.zeros(self.rows, self.latent_dim, dtype=DTYPE, device="meta", requires_grad=True)
        with FlopCounterMode(display=False) as counter:
            out = decoder(z)
            out.backward(torch.ones_like(out))  # weights do not require grad: the input gradient only
        return self.leapfrog_steps * counter.get_total_flops()


CONFIGS = {
    c.name: c
    for c in (
        Config("tiny", (2, 64, 64, 64), nn.Tanh, nn.Sigmoid, 50, 16, 50),
        Config("mid", (10, 256, 256, 784), nn.Tanh, nn.Sigmoid, 50, 16, 10),
        Config("paper", (10, 1024, 1024, 1024, 784), nn.Tanh, nn.Sigmoid, 10, 16, 5),
        Config("linear", (100, 784), nn.Identity, nn.Identity, 50, 16, 10),
        Config("vae50-bernoulli", (50, 200, 200, 784), nn.ELU, nn.Identity, 20, 16, 10,
               distortion="bernoulli_nll", form="decode"),
        Config("vae50-sequential", (50, 200, 200, 784), nn.ELU, nn.Identity, 20, 16, 10,
               distortion="bernoulli_nll"),
        Config("vae-decoder", (10, 256, 256, 784), nn.Tanh, nn.Sigmoid, 50, 16, 10, form="vae-decoder"),
        Config("dcgan", (32, 16, 784), None, None, 20, 8, 2, form="dcgan"),
    )
}
