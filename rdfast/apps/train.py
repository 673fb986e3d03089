"""Trainers for the demo models, checkpoints, and a cache that trains only once.

    train_vae(data, latent_dim)     VAE: Gaussian likelihood with a learned scalar variance
    train_aae(data, latent_dim)     adversarial autoencoder: reconstruction + a latent
                                    discriminator that pushes the codes towards N(0, I)
    train_gan(data, latent_dim)     WGAN with gradient penalty, MLP generator and critic
    train_dcgan(data, latent_dim)   WGAN with gradient penalty, DCGAN generator, conv critic
    trained(kind, latent_dim, cache_dir)   load a matching checkpoint, else train and save it

Each trainer runs on one CPU thread (see ``_seeded_single_thread``), is deterministic given
``seed`` without disturbing the global random state, and returns a ``Trained``: the models
in eval mode and the mean loss of every epoch. With the defaults each trains on the 1,497
digits of ``load_digits().train`` in about 7–14 s.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import models as M
from ..runtime.atomic import write_atomic

LOG_2PI = math.log(2 * math.pi)
MODEL_FORMAT = "rdfast-model-1"  # not an annealing checkpoint (rdfast.runtime.checkpoint.FORMAT)
TRAINING_VERSION = 1  # part of the cache key: bump when a trainer's results change, to retrain cached models

Progress = Union[bool, Callable[[str], None]]


@dataclass
class Trained:
    """Trained models (eval mode) by role, per-epoch mean losses by name, and the training config."""

    kind: str
    models: dict  # "decoder" plus "encoder", "discriminator" or "critic"
    history: dict  # loss name -> [epochs] list of floats
    config: dict

    @property
    def decoder(self) -> nn.Module:
        return self.models["decoder"]


def _reporter(progress: Progress):
    """``progress``: False or None (silent), True (print), or a callable taking one message line."""
    if progress is True:
        return lambda message: print(message, flush=True)
    if not progress:
        return lambda message: None
    if callable(progress):
        return progress
    raise TypeError(f"progress: expected a bool or a callable taking a message, got {type(progress).__name__}")


@contextmanager
def _seeded_single_thread(seed: int):
    """Seed torch's CPU generator for the block, then restore it and the thread count.

    The demo networks are too small to gain from more threads; with other work on the
    cores, two threads made training 9–18× slower (VAE 68 s against 7 s) with equal results.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def _check_data(data) -> torch.Tensor:
    """``data`` as a contiguous float32 CPU tensor [n, P]."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data: expected a torch.Tensor [n, P], got {type(data).__name__}")
    if data.dim() != 2 or data.shape[0] < 2:
        raise ValueError(f"data: expected shape [n, P] with n ≥ 2, got {tuple(data.shape)}")
    if not data.is_floating_point():
        raise ValueError(f"data: expected a floating-point tensor, got {data.dtype}")
    data = data.detach().to("cpu", torch.float32).contiguous()
    if not torch.isfinite(data).all():
        raise ValueError("data: contains NaN or inf")
    return data


def _check_training(epochs: int, batch_size: int, lr: float):
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs: expected a positive integer, got {epochs!r}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr: expected a positive number, got {lr!r}")


def _batches(n: int, batch_size: int):
    """Index tensors of one shuffled epoch, dropping a last batch smaller than half ``batch_size``."""
    order = torch.randperm(n)  # [n]
    stop = n if n % batch_size >= batch_size // 2 else n - n % batch_size
    return [order[i:i + batch_size] for i in range(0, max(stop, 1), batch_size)]


class _Epochs:
    """Accumulates per-batch losses into per-epoch means and reports about ten lines per run."""

    def __init__(self, name: str, epochs: int, names, progress: Progress):
        self.name, self.epochs, self.report = name, epochs, _reporter(progress)
        self.history = {key: [] for key in names}
        self.sums, self.counts = {}, {}
        self.every, self.start = math.ceil(epochs / 10), time.perf_counter()

    def add(self, **losses):
        """Record the losses of one batch (a loss may be absent from some batches)."""
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.item()
            self.counts[key] = self.counts.get(key, 0) + 1

    def end(self, epoch: int):
        for key, values in self.history.items():
            values.append(self.sums[key] / self.counts[key] if key in self.sums else float("nan"))
        self.sums, self.counts = {}, {}
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            losses = " ".join(f"{key} {values[-1]:.4g}" for key, values in self.history.items())
            self.report(f"{self.name} epoch {epoch + 1}/{self.epochs}  {losses}  "
                        f"({time.perf_counter() - self.start:.1f} s)")


def _finish(kind: str, models: dict, log: _Epochs, config: dict) -> Trained:
    for model in models.values():
        model.eval()
    return Trained(kind, models, log.history, config)


def _gaussian_nll(x, mean, logvar):
    """½ Σ_j [(x_j − x̂_j)² e^{−v} + v + log 2π] per row: [rows]."""
    return 0.5 * (((x - mean) ** 2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(1)


def train_vae(data, latent_dim: int, hidden: int = 256, depth: int = 2, epochs: int = 100,
              batch_size: int = 128, lr: float = 2e-3, seed: int = 0, progress: Progress = False) -> Trained:
    """A VAE on ``data`` [n, P] in [0, 1]: ``VAEDecoder`` + ``VAEEncoder``, one-sample ELBO.

    History: "loss" (negative ELBO per item, nats), "nll" and "kl" (its two terms).
    """
    data = _check_data(data)
    _check_training(epochs, batch_size, lr)
    config = dict(latent_dim=latent_dim, hidden=hidden, depth=depth, epochs=epochs, batch_size=batch_size,
                  lr=lr, seed=seed)
    log = _Epochs("vae", epochs, ["loss", "nll", "kl"], progress)
    with _seeded_single_thread(seed):
        P = data.shape[1]
        decoder = M.VAEDecoder(latent_dim, P, hidden, depth)
        encoder = M.VAEEncoder(latent_dim, P, hidden, depth)
        optimiser = torch.optim.Adam([*decoder.parameters(), *encoder.parameters()], lr=lr)
        for epoch in range(epochs):
            for index in _batches(len(data), batch_size):
                x = data[index]  # [b, P]
                mean, logvar = encoder(x)  # [b, K] each
                z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)  # [b, K]
                nll = _gaussian_nll(x, decoder(z), decoder.logvar).mean()
                kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
                loss = nll + kl
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                log.add(loss=loss, nll=nll, kl=kl)
            log.end(epoch)
    return _finish("vae", {"decoder": decoder, "encoder": encoder}, log, config)


def train_aae(data, latent_dim: int, hidden: int = 256, depth: int = 2, epochs: int = 60,
              batch_size: int = 128, lr: float = 2e-3, seed: int = 0, progress: Progress = False) -> Trained:
    """An adversarial autoencoder on ``data`` [n, P]: ``AAEEncoder`` → ``AAEDecoder``.

    Each batch takes three steps (Makhzani et al.): the autoencoder on the squared error;
    the ``LatentDiscriminator`` on prior samples z ~ N(0, I) against codes; the encoder on
    fooling the discriminator. History: "reconstruction" (Σ_j (x_j − x̂_j)² per item),
    "discriminator" and "generator" (binary cross-entropies).
    """
    data = _check_data(data)
    _check_training(epochs, batch_size, lr)
    config = dict(latent_dim=latent_dim, hidden=hidden, depth=depth, epochs=epochs, batch_size=batch_size,
                  lr=lr, seed=seed)
    log = _Epochs("aae", epochs, ["reconstruction", "discriminator", "generator"], progress)
    with _seeded_single_thread(seed):
        P = data.shape[1]
        decoder = M.AAEDecoder(latent_dim, P, hidden, depth)
        encoder = M.AAEEncoder(latent_dim, P, hidden, depth)
        discriminator = M.LatentDiscriminator(latent_dim, hidden, depth)
        autoencoder_opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
        discriminator_opt = torch.optim.Adam(discriminator.parameters(), lr=lr / 2, betas=(0.5, 0.9))
        encoder_opt = torch.optim.Adam(encoder.parameters(), lr=lr / 2, betas=(0.5, 0.9))
        for epoch in range(epochs):
            for index in _batches(len(data), batch_size):
                x = data[index]  # [b, P]
                reconstruction = ((x - decoder(encoder(x))) ** 2).sum(1).mean()
                autoencoder_opt.zero_grad()
                reconstruction.backward()
                autoencoder_opt.step()

                codes = encoder(x).detach()  # [b, K]
                prior = torch.randn_like(codes)  # [b, K]
                real, fake = discriminator(prior), discriminator(codes)  # [b] each
                disc_loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                             + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
                discriminator_opt.zero_grad()
                disc_loss.backward()
                discriminator_opt.step()

                fooled = discriminator(encoder(x))  # [b]
                gen_loss = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
                encoder_opt.zero_grad()
                gen_loss.backward()
                encoder_opt.step()
                log.add(reconstruction=reconstruction, discriminator=disc_loss, generator=gen_loss)
            log.end(epoch)
    return _finish("aae", {"decoder": decoder, "encoder": encoder, "discriminator": discriminator}, log, config)


def _gradient_penalty(critic, real, fake):
    """E[(‖∇_x̃ C(x̃)‖ − 1)²] at random interpolates x̃ of real and fake rows [b, P]."""
    mix = torch.rand(real.shape[0], 1)  # [b, 1]
    between = (mix * real + (1 - mix) * fake).requires_grad_(True)  # [b, P]
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)  # [b, P]
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def _wgan_gp(kind, data, generator, critic, config, epochs, batch_size, lr, n_critic, gp_weight, progress):
    """WGAN-GP (Gulrajani et al.): ``n_critic`` critic batches per generator step; Adam(0.5, 0.9).

    An epoch is one pass of the critic over the data. History: "critic" (its loss with the
    penalty), "wasserstein" (the critic's estimate E C(real) − E C(fake)), "generator" (NaN
    for an epoch without a generator step, possible only when it has under ``n_critic`` batches).
    """
    if not (isinstance(n_critic, int) and n_critic >= 1):
        raise ValueError(f"n_critic: expected a positive integer, got {n_critic!r}")
    if not gp_weight >= 0:
        raise ValueError(f"gp_weight: expected a non-negative number, got {gp_weight!r}")
    log = _Epochs(kind, epochs, ["critic", "wasserstein", "generator"], progress)
    generator_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.9))
    critic_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    latent_dim, critic_steps = generator.latent_dim, 0
    for epoch in range(epochs):
        for index in _batches(len(data), batch_size):
            real = data[index]  # [b, P]
            with torch.no_grad():
                fake = generator(torch.randn(len(index), latent_dim))  # [b, P]
            wasserstein = critic(real).mean() - critic(fake).mean()
            critic_loss = -wasserstein + gp_weight * _gradient_penalty(critic, real, fake)
            critic_opt.zero_grad()
            critic_loss.backward()
            critic_opt.step()
            critic_steps += 1
            if critic_steps % n_critic == 0:
                gen_loss = -critic(generator(torch.randn(batch_size, latent_dim))).mean()
                generator_opt.zero_grad()
                gen_loss.backward()
                generator_opt.step()
                log.add(generator=gen_loss)
            log.add(critic=critic_loss, wasserstein=wasserstein)
        log.end(epoch)
    return _finish(kind, {"decoder": generator, "critic": critic}, log, config)


def train_gan(data, latent_dim: int, hidden: int = 256, depth: int = 2, epochs: int = 100,
              batch_size: int = 64, lr: float = 5e-4, n_critic: int = 5, gp_weight: float = 10.0,
              seed: int = 0, progress: Progress = False) -> Trained:
    """A WGAN-GP on ``data`` [n, P]: ``MLPGenerator`` and ``MLPCritic`` (see ``_wgan_gp``)."""
    data = _check_data(data)
    _check_training(epochs, batch_size, lr)
    config = dict(latent_dim=latent_dim, hidden=hidden, depth=depth, epochs=epochs, batch_size=batch_size,
                  lr=lr, n_critic=n_critic, gp_weight=gp_weight, seed=seed)
    with _seeded_single_thread(seed):
        P = data.shape[1]
        generator = M.MLPGenerator(latent_dim, P, hidden, depth)
        critic = M.MLPCritic(P, hidden, depth)
        return _wgan_gp("gan", data, generator, critic, config, epochs, batch_size, lr, n_critic, gp_weight,
                        progress)


def train_dcgan(data, latent_dim: int, channels: int = 1, width: int = 16, upsamplings: int = 2,
                epochs: int = 60, batch_size: int = 64, lr: float = 1e-3, n_critic: int = 5,
                gp_weight: float = 10.0, seed: int = 0, progress: Progress = False) -> Trained:
    """A WGAN-GP on square images ``data`` [n, C·S·S]: ``DCGANGenerator`` and ``ConvCritic``."""
    data = _check_data(data)
    _check_training(epochs, batch_size, lr)
    P = data.shape[1]
    image_size = math.isqrt(P // channels)
    if channels * image_size ** 2 != P:
        raise ValueError(f"data: {P} values per row are not {channels} channel(s) of a square image")
    config = dict(latent_dim=latent_dim, channels=channels, width=width, upsamplings=upsamplings, epochs=epochs,
                  batch_size=batch_size, lr=lr, n_critic=n_critic, gp_weight=gp_weight, seed=seed)
    with _seeded_single_thread(seed):
        generator = M.DCGANGenerator(latent_dim, image_size, channels, width, upsamplings)
        critic = M.ConvCritic(image_size, channels, width, upsamplings)
        return _wgan_gp("dcgan", data, generator, critic, config, epochs, batch_size, lr, n_critic, gp_weight,
                        progress)


TRAINERS = {"vae": train_vae, "aae": train_aae, "gan": train_gan, "dcgan": train_dcgan}


def save_checkpoint(path, model, config: dict, history: dict | None = None):
    """Write ``model`` (a module or a dict of modules), ``config`` and ``history`` to ``path``.

    Each module is stored with its class name and constructor config, so ``load_checkpoint``
    needs no code from the caller. The write is atomic: a temporary file in the same folder,
    then a rename.
    """
    modules = model if isinstance(model, dict) else {"": model}
    for name, module in modules.items():
        if type(module).__name__ not in M.MODELS:
            raise TypeError(f"model: {name or 'model'} is a {type(module).__name__}, not one of {sorted(M.MODELS)}")
    payload = {
        "format": MODEL_FORMAT,
        "single": not isinstance(model, dict),
        "models": {name: {"class": type(module).__name__, "config": module.config,
                          "state": module.state_dict()} for name, module in modules.items()},
        "config": config,
        "history": history,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: torch.save(payload, f))


def load_checkpoint(path):
    """``(model, config, history)`` from ``save_checkpoint``; modules rebuilt, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such checkpoint: {str(path)!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"path: {str(path)!r} is not a readable checkpoint ({err})") from None
    if not (isinstance(payload, dict) and payload.get("format") == MODEL_FORMAT):
        raise ValueError(f"path: {str(path)!r} is not a trained rdfast model ({MODEL_FORMAT})")
    modules = {}
    for name, entry in payload["models"].items():
        module = M.build(entry["class"], entry["config"])
        module.load_state_dict(entry["state"])
        modules[name] = module.eval()
    model = modules[""] if payload["single"] else modules
    return model, payload["config"], payload["history"]


def _fingerprint(data: torch.Tensor) -> str:
    """A short hash of the values and shape of ``data``."""
    digest = hashlib.sha256(str(tuple(data.shape)).encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()[:16]


def trained(kind: str, latent_dim: int, cache_dir, data=None, progress: Progress = False, **options) -> Trained:
    """The ``kind`` model ("vae", "aae", "gan", "dcgan") from ``cache_dir``, training it if absent.

    ``data`` [n, P] defaults to ``load_digits().train``; ``options`` go to the trainer
    (``train_vae`` etc.). A checkpoint matches when the full trainer config (defaults filled
    in), the data's fingerprint and ``TRAINING_VERSION`` are equal; its file name holds a
    hash of all three.
    """
    if kind not in TRAINERS:
        raise ValueError(f"kind: expected one of {sorted(TRAINERS)}, got {kind!r}")
    trainer = TRAINERS[kind]
    if data is None:
        from .data import load_digits

        data = load_digits().train
    data = _check_data(data)
    try:
        bound = inspect.signature(trainer).bind(data, latent_dim, **options)
    except TypeError as err:
        raise TypeError(f"options: {err} (for {trainer.__name__})") from None
    bound.apply_defaults()
    config = {key: value for key, value in bound.arguments.items() if key not in ("data", "progress")}
    config.update(kind=kind, data=_fingerprint(data), version=TRAINING_VERSION)
    key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{kind}-k{latent_dim}-{key}.pt"
    report = _reporter(progress)
    if path.is_file():
        models, stored, history = load_checkpoint(path)
        if stored == config:
            report(f"{kind}: loaded {path}")
            return Trained(kind, models, history, stored)
    result = trainer(data, latent_dim, progress=progress, **options)
    save_checkpoint(path, result.models, config, result.history)
    report(f"{kind}: saved {path}")
    return Trained(kind, result.models, result.history, config)
