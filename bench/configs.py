"""Benchmark configurations: decoders, data sizes and the matmul FLOPs of one AIS transition.

All use Gaussian NLL with σ² = 0.03, float32, and L = 10 leapfrog steps unless a configuration
says otherwise (bench/test_gpu.py: the paper's L = 20). Decoder weights are
PyTorch's default initialisation under a fixed seed; data are uniform in [0, 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LOGVAR = math.log(0.03)
LEAPFROG_STEPS = 10
DTYPE = torch.float32


@dataclass(frozen=True)
class Config:
    """A decoder z [B, sizes[0]] -> x̂ [B, sizes[-1]] and N items × M chains."""

    name: str
    sizes: tuple  # layer widths, latent first
    hidden: type  # activation module after each hidden layer
    output: type  # activation module after the last layer
    n_items: int
    n_chains: int
    block: int  # transitions per timed round (an rdfast round adds one initial evaluation: 1/(L·block))
    leapfrog_steps: int = LEAPFROG_STEPS

    @property
    def rows(self) -> int:
        return self.n_items * self.n_chains

    def decoder(self, device="cpu") -> nn.Sequential:
        torch.manual_seed(0)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            layers += [nn.Linear(n_in, n_out), self.hidden() if i < len(self.sizes) - 2 else self.output()]
        return nn.Sequential(*layers).to(device=device, dtype=DTYPE).eval()

    def data(self, device="cpu") -> torch.Tensor:
        x = torch.rand(self.n_items, self.sizes[-1], generator=torch.Generator().manual_seed(1), dtype=DTYPE)
        return x.to(device)

    def flops_per_transition(self) -> int:
        """Matmul FLOPs of L forwards and L input-gradient backwards: 2 · 2 · B · Σ_l in_l · out_l per step."""
        macs = sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        return self.leapfrog_steps * 2 * 2 * self.rows * macs


CONFIGS = {
    c.name: c
    for c in (
        Config("tiny", (2, 64, 64, 64), nn.Tanh, nn.Sigmoid, 50, 16, 50),
        Config("mid", (10, 256, 256, 784), nn.Tanh, nn.Sigmoid, 50, 16, 10),
        Config("paper", (10, 1024, 1024, 1024, 784), nn.Tanh, nn.Sigmoid, 10, 16, 5),
        Config("linear", (100, 784), nn.Identity, nn.Identity, 50, 16, 10),
    )
}
