"""Command line: ``rdfast demo``, ``rdfast run``, ``rdfast loglik``, ``rdfast plot``, ``rdfast backends``."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
from pathlib import Path

import torch

from ..runtime.atomic import check_writable, write_atomic
from ..sampling import schedules

DEFAULT_ITEMS = 50


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _betas(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive betas, got {text!r}")
    return values


def load_decoder(spec: str):
    """A decoder from ``package.module:attribute`` (an nn.Module, a class built with no arguments,
    or a callable z -> x̂) or from a TorchScript file (``.pt``/``.pth``)."""
    return load_callable(spec, "--decoder")


def load_callable(spec: str, flag: str):
    """A model named on the command line (``flag``: the option, for the errors): from
    ``package.module:attribute`` (an nn.Module, a class built with no arguments, or a callable)
    or a TorchScript file (``.pt``/``.pth``); modules are put in eval mode without gradients."""
    path = Path(spec)
    if path.suffix in (".pt", ".pth") or path.is_file():
        if not path.is_file():
            raise SystemExit(f"rdfast: {flag}: no such file: {spec}")
        try:
            return torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # torch raises several types for non-TorchScript files
            raise SystemExit(f"rdfast: {flag}: {spec} is not a TorchScript file ({exc})") from None
    if ":" not in spec:
        raise SystemExit(f"rdfast: {flag}: expected package.module:attribute or a TorchScript file, got {spec!r}")
    module_name, attr = spec.split(":", 1)
    sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"rdfast: {flag}: cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # the user's module failed while it ran: say where, without a traceback
        raise SystemExit(f"rdfast: {flag}: importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SystemExit(f"rdfast: {flag}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:  # e.g. a constructor that needs arguments
            raise SystemExit(f"rdfast: {flag}: {spec} is a class and {attr}() raised {type(exc).__name__}: {exc}; "
                             "name an instance, or a class whose constructor needs no arguments") from None
    if not callable(obj):
        raise SystemExit(f"rdfast: {flag}: {spec} is not callable")
    if isinstance(obj, torch.nn.Module):
        obj.eval().requires_grad_(False)
    return obj


def _load_items(args):
    from .data import load_digits, load_idx, load_npz

    if args.data == "digits":
        d = load_digits()
        x, shape = d.test, d.image_shape
    else:
        try:
            x, shape = load_npz(args.data, args.key) if args.data.endswith(".npz") else load_idx(args.data)
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"rdfast: --data: {exc}") from None
    if args.items is not None and args.items > x.shape[0]:
        raise SystemExit(f"rdfast: --items: {args.items} asked for, but {args.data} holds {x.shape[0]} items; "
                         f"pass --items {x.shape[0]} or fewer")
    return x[: args.items or DEFAULT_ITEMS], shape


def _device(spec: str) -> torch.device:
    """--device: "auto" is cuda:LOCAL_RANK (torchrun's local rank, else 0) where a GPU is, else cpu."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise SystemExit(f"rdfast: --device: expected cpu, cuda, cuda:N or auto, got {spec!r} ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"rdfast: --device: {spec} asked for, but torch {torch.__version__} sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"rdfast: --device: expected cpu, cuda, cuda:N or auto, got {spec!r}")
    return device


def _decoder_and_items(args):
    """The decoder, the items [N, ...] on the device in the dtype asked for, and the logvar
    (``--logvar``, else the decoder's ``.logvar`` for gaussian_nll)."""
    device = _device(args.device)
    decoder = load_decoder(args.decoder)
    x, _ = _load_items(args)
    x = x.to(device=device, dtype=torch.float64 if args.dtype == "float64" else torch.float32)
    if isinstance(decoder, torch.nn.Module):
        decoder.to(device=device, dtype=x.dtype)
    logvar = args.logvar
    if args.distortion == "gaussian_nll" and logvar is None and hasattr(decoder, "logvar") \
            and not _returns_pair(decoder, args.latent_dim, x):
        logvar = decoder.logvar
    return decoder, x, logvar


def _returns_pair(decoder, latent_dim, x) -> bool:
    """Whether ``decoder`` returns (mean, logvar) (then its own logvar output is used, not ``.logvar``)."""
    from ..runtime.validation import infer_latent_dim

    try:
        K = infer_latent_dim(decoder, None, latent_dim)
        with torch.no_grad():
            return isinstance(decoder(torch.zeros(1, K, dtype=x.dtype, device=x.device)), (tuple, list))
    except Exception:  # the run itself reports what is wrong with the decoder, naming it
        return False


def _common(args, logvar) -> dict:
    """The keyword arguments every command passes to AIS; under torchrun (WORLD_SIZE > 1) the
    items are sharded over the ranks and rank 0 writes the outputs."""
    sharded = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return dict(distortion=args.distortion, logvar=logvar, n_chains=args.chains, leapfrog_steps=args.leapfrog,
                backend=args.backend, progress=not args.quiet, batch_size=args.batch_size,
                latent_dim=args.latent_dim, cuda_graphs={"auto": None, "on": True, "off": False}[args.cuda_graphs],
                distributed="rank0" if sharded else False)


def _checkpointing(args) -> dict:
    return dict(checkpoint=args.checkpoint, resume=args.resume, checkpoint_every=args.checkpoint_every)


def cmd_run(args) -> int:
    from ..sampling.annealing import ais, record_steps
    from ..sampling.bdmc import bdmc
    from ..sampling.curve import rd_curve
    from ..sampling.loglik import LIKELIHOODS
    from .demo import _bdmc_json, _curve_json, curve_log_likelihood, summary, write_results

    out = _output_folder(args.out, ["result.npz", "results.json"] + (["bdmc.npz"] if args.bdmc else []))
    decoder, x, logvar = _decoder_and_items(args)
    common = _common(args, logvar)
    make = {"sigmoid": lambda: schedules.sigmoid(args.steps, args.beta_max, args.radius),
            "linear": lambda: schedules.linear(args.steps, args.beta_max)}[args.schedule]
    # with d = −log p(x|z), log Ẑ at β = 1 is the AIS log-likelihood: the path passes through it
    through = [1.0] if args.distortion in LIKELIHOODS and args.beta_max >= 1.0 else []
    with _flag_errors(args):
        if args.single_round:
            path, forced = schedules.through(make(), through)
            record = sorted(set(record_steps(args.record, args.steps).tolist()) | set(forced))
            res = ais(decoder, x, path, seed=args.seed, record=record, **_checkpointing(args), **common)
        else:
            res = rd_curve(decoder, x, schedule=make(), seed=args.seed, record=args.record, through=through,
                           **_checkpointing(args), **common)
        bd = None
        if args.bdmc:
            bd = bdmc(decoder, args.bdmc, args.bdmc_items, steps=args.bdmc_steps, seed=args.seed,
                      dtype=x.dtype, **common)
    if res is None:  # a rank other than 0
        return 0
    entry = {"curve": _curve_json(res)}
    if through:
        entry["log_likelihood"] = curve_log_likelihood(res)
    written = ["result.npz"]
    res.save(out / "result.npz")
    if bd is not None:
        entry["bdmc"] = _bdmc_json(bd)
        bd.save(out / "bdmc.npz")
        written.append("bdmc.npz")
    results = {"data": args.data, "distortion": args.distortion, "settings": _settings(args, x),
               "models": {args.name: entry}}
    written += write_results(results, out)
    print(res.summary(max_rows=12))
    extra = summary(results, curves=False)
    if extra:
        print(extra)
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return 0


def cmd_loglik(args) -> int:
    from ..sampling.bdmc import bdmc
    from ..sampling.loglik import log_likelihood
    from .demo import _bdmc_json, loglik_json

    out = _output_folder(args.out, ["loglik.npz", "loglik.json"] + (["bdmc.npz"] if args.bdmc else []))
    decoder, x, logvar = _decoder_and_items(args)
    encoder = None if args.encoder is None else load_callable(args.encoder, "--encoder")
    if isinstance(encoder, torch.nn.Module):
        encoder.to(device=x.device, dtype=x.dtype)
    common = _common(args, logvar)
    with _flag_errors(args):
        ll = log_likelihood(decoder, x, args.steps, encoder=encoder, seed=args.seed, **_checkpointing(args), **common)
        bd = None
        if args.bdmc:
            bd = bdmc(decoder, [1.0], args.bdmc_items, steps=args.bdmc_steps, seed=args.seed, dtype=x.dtype, **common)
    if ll is None:  # a rank other than 0
        return 0
    ll.save(out / "loglik.npz")
    entry = {"data": args.data, "decoder": args.decoder, "encoder": args.encoder, "settings": _settings(args, x),
             "log_likelihood": loglik_json(ll)}
    if bd is not None:
        entry["bdmc"] = _bdmc_json(bd)
        bd.save(out / "bdmc.npz")
    write_atomic(out / "loglik.json", lambda f: f.write(json.dumps(entry, indent=1).encode()))
    print(ll.summary(args.unit))
    if bd is not None:
        print(bd.summary())
    print(f"wrote {out / 'loglik.npz'} (log p(x) per item), {out / 'loglik.json'}"
          + (f" and {out / 'bdmc.npz'}" if bd is not None else ""))
    return 0


def _settings(args, x) -> dict:
    """The run's settings for its JSON file: what it takes to run it again."""
    names = ("decoder", "items", "chains", "leapfrog", "seed", "dtype", "batch_size", "backend", "distortion",
             "logvar", "latent_dim", "steps", "beta_max", "schedule", "radius", "record", "single_round", "encoder",
             "bdmc", "bdmc_items", "bdmc_steps")
    settings = {name: getattr(args, name) for name in names if hasattr(args, name)}
    settings.update(items=x.shape[0], device=str(x.device))
    if not settings.get("bdmc"):
        settings = {k: v for k, v in settings.items() if not k.startswith("bdmc_")}
    return settings


def _output_folder(out: str, names) -> Path:
    """``--out`` checked before any work: a folder (created if missing) that takes files, and that
    holds none of the result files ``names`` of an earlier run (never overwritten)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SystemExit(f"rdfast: --out: {out} is a file; expected a folder for the results")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        check_writable("--out", folder / names[0])
    except (OSError, ValueError) as exc:
        raise SystemExit(f"rdfast: --out: cannot write results in {out} ({exc})") from None
    taken = [name for name in names if (folder / name).exists()]
    if taken:
        raise SystemExit(f"rdfast: --out: {out} already holds {', '.join(taken)} of an earlier run; choose another "
                         "--out, or move those files away")
    return folder


# the options of ``run`` and ``loglik`` by the name of the argument of the Python API they set
API_FLAGS = {"x": "--data", "n_chains": "--chains", "leapfrog_steps": "--leapfrog", "n_data": "--bdmc-items"}


@contextlib.contextmanager
def _flag_errors(args):
    """Errors of the Python API as the command's: one line, naming options (``--latent-dim 8``) where
    the API names arguments (``latent_dim=8``)."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"rdfast: {cli_message(str(exc), vars(args))}") from None


def cli_message(message: str, options) -> str:
    """``message`` with each API argument that has an option among ``options`` (names of the
    parsed arguments) written as the option: ``name=value`` as ``--name value``, ``name:`` and
    ``snake_name`` as ``--name``."""
    flags = {name: "--" + name.replace("_", "-") for name in options if name != "schedule"}
    flags.update({name: flag for name, flag in API_FLAGS.items() if flag[2:].replace("-", "_") in options})
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    message = re.sub(rf"(?<![\w./-])({names})=('([^']*)'|[^\s,;)]*)",
                     lambda m: " ".join(filter(None, (flags[m.group(1)], m.group(3) or m.group(2)))), message)
    message = re.sub(rf"(^|; )({names}):", lambda m: f"{m.group(1)}{flags[m.group(2)]}:", message)
    return re.sub(rf"(?<![\w./-])({names})(?![\w-])",
                  lambda m: flags[m.group(1)] if "_" in m.group(1) else m.group(1), message)


def cmd_demo(args) -> int:
    from .demo import Settings, run_demo

    settings = Settings.quick() if args.quick else Settings()
    run_demo(args.out, settings, backend=args.backend, seed=args.seed, cache=args.cache)
    if args.quick:
        print(f"--quick checks the code paths only: {settings.steps} transitions per curve are far too few for "
              "accurate numbers (rates can even come out negative); run without --quick for an evaluation")
    return 0


def cmd_plot(args) -> int:
    path = Path(args.results)
    if path.is_dir():
        hint = f"; pass {path / 'results.json'}" if (path / "results.json").is_file() else ""
        raise SystemExit(f"rdfast: plot: {path} is a folder; expected the path of a results.json{hint}")
    try:
        results = json.loads(path.read_text())
        models = results["models"]
        if not isinstance(models, dict) or not all("curve" in m for m in models.values()):
            raise KeyError("curve")
    except FileNotFoundError:
        raise SystemExit(f"rdfast: plot: no such file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise SystemExit(f"rdfast: plot: {path} is not an rdfast results.json (from rdfast run or rdfast demo: "
                         f"{type(exc).__name__}: {exc})") from None
    out = Path(args.out) if args.out else path.parent
    if out.exists() and not out.is_dir():
        raise SystemExit(f"rdfast: --out: {out} is a file; expected a folder for the figures")
    out.mkdir(parents=True, exist_ok=True)
    from .figures import of_results

    print(f"wrote {' and '.join(str(out / name) for name in of_results(results, out))}")
    return 0


def cmd_backends(args) -> int:
    from .. import backends
    from ..runtime import device_loop

    safe = ".".join(map(str, device_loop.SAFE_TO_TRY_TORCH))
    graphs = (f"yes (torch >= {safe})" if device_loop.captures_by_default()
              else f"no: before torch {safe} only with cuda_graphs=True (docs/gpu.md)")
    for label, text in [*backends.environment(), ("CUDA graphs", f"captured by default: {graphs}")]:
        print(f"{label:14} {text}")
    print()
    for name, info in backends.available().items():
        state = "available" if info["available"] else f"unavailable: {info['reason']}"
        print(f"{name:7} on {'/'.join(info['devices']):9} {state}")
    return 0


def _model_arguments(parser, distortions, default) -> None:
    """The decoder, the data and the sampler: options shared by ``run`` and ``loglik``."""
    parser.add_argument("--decoder", required=True, help="package.module:attribute or a TorchScript file")
    parser.add_argument("--data", required=True, help="'digits', a .npz file or an MNIST-format IDX file")
    parser.add_argument("--key", default=None, help="array name inside the .npz file")
    parser.add_argument("--items", type=_positive_int, default=None,
                        help=f"use the first N items (default: {DEFAULT_ITEMS}, or all if there are fewer)")
    parser.add_argument("--distortion", default=default, choices=distortions)
    parser.add_argument("--logvar", type=float, default=None,
                        help="gaussian_nll log-variance (default: the decoder's .logvar attribute)")
    parser.add_argument("--latent-dim", type=_positive_int, default=None, help="latent size if not inferable")
    parser.add_argument("--chains", type=_positive_int, default=16)
    parser.add_argument("--leapfrog", type=_positive_int, default=10)


def _run_arguments(parser) -> None:
    """Where and how it runs, BDMC's size, checkpoints and outputs: shared by ``run`` and ``loglik``."""
    parser.add_argument("--bdmc-items", type=_positive_int, default=10)
    parser.add_argument("--bdmc-steps", type=_positive_int, default=1000)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N or auto (default: cuda:LOCAL_RANK where a GPU is, else cpu)")
    parser.add_argument("--cuda-graphs", choices=["auto", "on", "off"], default="auto",
                        help="replay CUDA graphs of the transitions (auto: where torch >= 2.12 can; see docs/gpu.md)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--batch-size", type=_positive_int, default=None, help="items per pass")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (one per round: PATH.tune, PATH.final)")
    parser.add_argument("--checkpoint-every", type=_positive_float, default=600.0, help="seconds between checkpoints")
    parser.add_argument("--resume", default=None, help="continue from this checkpoint path")
    parser.add_argument("--out", default="rdfast_out")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rdfast", description="Rate-distortion curves, log-likelihoods and BDMC "
                                     "bounds of deep generative models by annealed importance sampling.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train small VAE/GAN/AAE models on built-in digits and evaluate them")
    demo.add_argument("--out", default="rdfast_out", help="output folder (default: rdfast_out)")
    demo.add_argument("--quick", action="store_true", help="tiny settings (seconds), for CI and smoke tests")
    demo.add_argument("--backend", default="auto", help="auto, torch, cpu, cuda or triton (default: auto)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--cache", default=None, help="folder of trained models (default: OUT/models)")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="RD curve (and optional BDMC) of your decoder on your data")
    _model_arguments(run, ["squared_error", "gaussian_nll", "bernoulli_nll"], "squared_error")
    run.add_argument("--name", default="model", help="name of the model in results.json")
    run.add_argument("--beta-max", type=_positive_float, default=1000.0)
    run.add_argument("--steps", type=_positive_int, default=10000, help="AIS transitions per round")
    run.add_argument("--schedule", choices=["sigmoid", "linear"], default="sigmoid")
    run.add_argument("--radius", type=_positive_float, default=schedules.SIGMOID_RADIUS,
                     help=f"radius of round 1's sigmoid schedule (default {schedules.SIGMOID_RADIUS:g}, the published code's)")
    run.add_argument("--record", type=_positive_int, default=200, help="points on the curve")
    run.add_argument("--single-round", action="store_true", help="adapt step sizes in the only round")
    run.add_argument("--bdmc", type=_betas, default=None, help="comma-separated betas for BDMC gaps")
    _run_arguments(run)
    run.set_defaults(func=cmd_run)

    loglik = sub.add_parser("loglik", help="AIS log-likelihood log p(x) of your decoder on your data, mean ± SE")
    _model_arguments(loglik, ["gaussian_nll", "bernoulli_nll"], "gaussian_nll")
    loglik.add_argument("--encoder", default=None,
                        help="package.module:attribute of x -> (mean, logvar) of q(z|x): anneal from it, not the prior")
    loglik.add_argument("--steps", type=_positive_int, default=1000, help="AIS transitions per round (default 1000)")
    loglik.add_argument("--bdmc", action="store_true", help="also BDMC bounds at beta = 1 on simulated items")
    loglik.add_argument("--unit", choices=["nats", "nats/dim", "bits/dim"], default="nats",
                        help="the printed value: per item (nats), per dimension, or bits per dimension")
    _run_arguments(loglik)
    loglik.set_defaults(func=cmd_loglik)

    plot = sub.add_parser("plot", help="redraw the figures of a results.json")
    plot.add_argument("results", help="path of results.json")
    plot.add_argument("--out", default=None, help="output folder (default: beside results.json)")
    plot.set_defaults(func=cmd_plot)

    info = sub.add_parser("backends", help="versions (torch, CUDA, driver, Triton), GPUs, and the backends that run here")
    info.set_defaults(func=cmd_backends)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
