"""Small demo model families (after the paper's §8.1), sized for 8×8 digits by default.

Decoders map latents z [rows, K] to flattened images x̂ [rows, P] in (0, 1) and carry:

    latent_dim   K
    data_dim     P
    distortion   the distortion the model was trained under: "gaussian_nll" for the VAE,
                 "squared_error" for the AAE (its reconstruction loss) and the GAN generators
                 (which have no likelihood of their own; the paper's RD curves use it for all)
    logvar       the Gaussian observation log-variance (learned for the VAE, a fixed buffer
                 of log 0.03 elsewhere, as the paper attaches to AAEs and GANs)
    config       the constructor arguments, so ``build(type(m).__name__, m.config)`` remakes it

In eval mode every decoder is a pure function of z (BatchNorm uses its running statistics).
The encoders, discriminator and critics exist only to train the decoders.
"""
from __future__ import annotations

import math

import torch
from torch import nn

PAPER_LOGVAR = math.log(0.03)  # the paper's observation log-variance (initial, or fixed)


def mlp(sizes, activation) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation()`` between them (none after the last)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(activation())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def _check_positive(**sizes):
    for name, value in sizes.items():
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")


class VAEDecoder(nn.Module):
    """z [rows, K] → tanh MLP → sigmoid means x̂ [rows, P]; a learned scalar log-variance."""

    distortion = "gaussian_nll"

    def __init__(self, latent_dim: int, data_dim: int = 64, hidden: int = 256, depth: int = 2):
        super().__init__()
        _check_positive(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.config = dict(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.net = mlp([latent_dim] + [hidden] * depth + [data_dim], nn.Tanh)
        self.logvar = nn.Parameter(torch.tensor(PAPER_LOGVAR))  # [] scalar

    def forward(self, z):  # [rows, K] -> [rows, P]
        return torch.sigmoid(self.net(z))


class VAEEncoder(nn.Module):
    """x [rows, P] → tanh MLP → (mean, log-variance) of q(z|x), each [rows, K]."""

    def __init__(self, latent_dim: int, data_dim: int = 64, hidden: int = 256, depth: int = 2):
        super().__init__()
        _check_positive(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.config = dict(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.net = mlp([data_dim] + [hidden] * depth + [2 * latent_dim], nn.Tanh)

    def forward(self, x):  # [rows, P] -> ([rows, K], [rows, K])
        mean, logvar = self.net(x).chunk(2, dim=1)
        return mean, logvar


class _FixedVarianceDecoder(nn.Module):
    """z [rows, K] → MLP with ``activation`` hidden layers → sigmoid x̂ [rows, P]; fixed log-variance log 0.03."""

    distortion = "squared_error"
    activation = nn.ReLU

    def __init__(self, latent_dim: int, data_dim: int = 64, hidden: int = 256, depth: int = 2):
        super().__init__()
        _check_positive(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.config = dict(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.net = mlp([latent_dim] + [hidden] * depth + [data_dim], self.activation)
        self.register_buffer("logvar", torch.tensor(PAPER_LOGVAR))  # [] scalar

    def forward(self, z):  # [rows, K] -> [rows, P]
        return torch.sigmoid(self.net(z))


class AAEDecoder(_FixedVarianceDecoder):
    """AAE decoder: z [rows, K] → ReLU MLP → sigmoid means x̂ [rows, P]; fixed log-variance log 0.03."""

    activation = nn.ReLU


class AAEEncoder(nn.Module):
    """x [rows, P] → ReLU MLP → deterministic code z [rows, K]."""

    def __init__(self, latent_dim: int, data_dim: int = 64, hidden: int = 256, depth: int = 2):
        super().__init__()
        _check_positive(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.config = dict(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.net = mlp([data_dim] + [hidden] * depth + [latent_dim], nn.ReLU)

    def forward(self, x):  # [rows, P] -> [rows, K]
        return self.net(x)


class LatentDiscriminator(nn.Module):
    """z [rows, K] → ReLU MLP → logit [rows] that z came from the prior rather than the encoder."""

    def __init__(self, latent_dim: int, hidden: int = 256, depth: int = 2):
        super().__init__()
        _check_positive(latent_dim=latent_dim, hidden=hidden, depth=depth)
        self.config = dict(latent_dim=latent_dim, hidden=hidden, depth=depth)
        self.latent_dim = latent_dim
        self.net = mlp([latent_dim] + [hidden] * depth + [1], nn.ReLU)

    def forward(self, z):  # [rows, K] -> [rows]
        return self.net(z).squeeze(1)


class MLPGenerator(_FixedVarianceDecoder):
    """GAN generator: z [rows, K] → tanh MLP → sigmoid x̂ [rows, P]."""

    activation = nn.Tanh


class MLPCritic(nn.Module):
    """WGAN critic: x [rows, P] → LeakyReLU MLP → score [rows] (no normalisation layers)."""

    def __init__(self, data_dim: int = 64, hidden: int = 256, depth: int = 2):
        super().__init__()
        _check_positive(data_dim=data_dim, hidden=hidden, depth=depth)
        self.config = dict(data_dim=data_dim, hidden=hidden, depth=depth)
        self.data_dim = data_dim
        self.net = mlp([data_dim] + [hidden] * depth + [1], lambda: nn.LeakyReLU(0.2))

    def forward(self, x):  # [rows, P] -> [rows]
        return self.net(x).squeeze(1)


def _check_image(image_size: int, upsamplings: int):
    _check_positive(image_size=image_size, upsamplings=upsamplings)
    if image_size % 2 ** upsamplings:
        raise ValueError(f"image_size: {image_size} is not divisible by 2**upsamplings = {2 ** upsamplings}")


class DCGANGenerator(nn.Module):
    """z [rows, K] → Linear → [BatchNorm–ReLU–ConvTranspose(4, 2, 1)]×n → sigmoid x̂ [rows, P].

    Square images of ``image_size`` pixels a side and ``channels`` channels, P = C·S·S. The
    linear layer makes a (width·2^(n−1))-channel map of side S/2^n; each transposed
    convolution doubles the side and halves the channels, the last one to ``channels``.
    """

    distortion = "squared_error"

    def __init__(self, latent_dim: int, image_size: int = 8, channels: int = 1, width: int = 16,
                 upsamplings: int = 2):
        super().__init__()
        _check_positive(latent_dim=latent_dim, channels=channels, width=width)
        _check_image(image_size, upsamplings)
        self.config = dict(latent_dim=latent_dim, image_size=image_size, channels=channels, width=width,
                           upsamplings=upsamplings)
        self.latent_dim, self.data_dim = latent_dim, channels * image_size ** 2
        self.start_channels, self.start_size = width * 2 ** (upsamplings - 1), image_size // 2 ** upsamplings
        self.project = nn.Linear(latent_dim, self.start_channels * self.start_size ** 2, bias=False)
        layers = []
        n_in = self.start_channels
        for i in range(upsamplings):
            n_out = channels if i == upsamplings - 1 else n_in // 2
            layers += [nn.BatchNorm2d(n_in), nn.ReLU(), nn.ConvTranspose2d(n_in, n_out, 4, 2, 1)]
            n_in = n_out
        self.net = nn.Sequential(*layers)
        self.register_buffer("logvar", torch.tensor(PAPER_LOGVAR))  # [] scalar

    def forward(self, z):  # [rows, K] -> [rows, P]
        h = self.project(z).view(-1, self.start_channels, self.start_size, self.start_size)  # [rows, C0, s, s]
        return torch.sigmoid(self.net(h)).flatten(1)


class ConvCritic(nn.Module):
    """WGAN critic for square images: x [rows, P] → [Conv(4, 2, 1)–LeakyReLU]×n → Linear → [rows]."""

    def __init__(self, image_size: int = 8, channels: int = 1, width: int = 16, downsamplings: int = 2):
        super().__init__()
        _check_positive(channels=channels, width=width)
        _check_image(image_size, downsamplings)
        self.config = dict(image_size=image_size, channels=channels, width=width, downsamplings=downsamplings)
        self.image_size, self.channels = image_size, channels
        self.data_dim = channels * image_size ** 2
        layers, n_in = [], channels
        for i in range(downsamplings):
            n_out = width * 2 ** i
            layers += [nn.Conv2d(n_in, n_out, 4, 2, 1), nn.LeakyReLU(0.2)]
            n_in = n_out
        end_size = image_size // 2 ** downsamplings
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(n_in * end_size ** 2, 1))

    def forward(self, x):  # [rows, P] -> [rows]
        images = x.reshape(-1, self.channels, self.image_size, self.image_size)  # [rows, C, S, S]
        return self.net(images).squeeze(1)


MODELS = {cls.__name__: cls for cls in (VAEDecoder, VAEEncoder, AAEDecoder, AAEEncoder, LatentDiscriminator,
                                        MLPGenerator, MLPCritic, DCGANGenerator, ConvCritic)}


def build(name: str, config: dict) -> nn.Module:
    """A fresh model of class ``name`` (a key of MODELS) from its constructor ``config``."""
    if name not in MODELS:
        raise ValueError(f"name: unknown model class {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**config)
