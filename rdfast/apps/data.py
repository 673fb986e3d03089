"""Built-in and on-disk image data, as float32 tensors flattened to [n, P].

    load_digits()        scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download)
    load_idx(path)       an MNIST-format IDX file of unsigned bytes, gzipped or plain
    load_npz(path, key)  one array of a NumPy ``.npz`` archive
    load_data(spec)      any of the above by name or path, split into train and test

Pixel values are scaled to [0, 1] (unsigned bytes are divided by 255, the digits' 0–16
grey levels by 16); floating-point arrays are returned as stored. Nothing is fetched from
the network.
"""
from __future__ import annotations

import gzip
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TEST_FRACTION = 1 / 6  # share of the items held out by ``split`` (300 of the 1,797 digits)
SPLIT_SEED = 0  # seed of the fixed permutation behind every train/test split

_IDX_UBYTE = 0x08
_IDX_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
                   0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Dataset:
    """A train/test pair of flattened images and the shape each row unflattens to."""

    name: str
    train: torch.Tensor  # [n_train, P] float32
    test: torch.Tensor  # [n_test, P] float32
    image_shape: tuple  # e.g. (8, 8); prod(image_shape) == P


def split(x: torch.Tensor, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED):
    """(train, test) rows of ``x`` [n, P] under a fixed permutation; deterministic given ``seed``."""
    n = x.shape[0]
    n_test = round(n * test_fraction)
    if not 0 < n_test < n:
        raise ValueError(f"x: {n} items cannot be split into non-empty train and test sets "
                         f"with test_fraction={test_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))  # [n]
    return x[order[n_test:]].contiguous(), x[order[:n_test]].contiguous()


def load_digits() -> Dataset:
    """scikit-learn's 8×8 digits in [0, 1]: 1,497 train and 300 test rows of 64 pixels.

    ``image_shape = (8, 8)``. The split is the same on every call and every machine.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise ImportError("the built-in digits come with scikit-learn, which the demo extra installs: "
                          "pip install 'rdfast[demo]' (or pip install scikit-learn)") from exc

    images = sklearn_digits().data  # [1797, 64] float64, grey levels 0..16
    x = torch.from_numpy(images / 16.0).to(torch.float32)  # [1797, 64]
    train, test = split(x)
    return Dataset("digits", train, test, (8, 8))


def _read_bytes(path) -> bytes:
    """The contents of ``path``, gunzipped when it starts with the gzip magic number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file: {str(path)!r}")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise ValueError(f"path: {str(path)!r} is a damaged or truncated gzip file ({err})") from None


def load_idx(path):
    """Images from an IDX file of unsigned bytes (MNIST format), gzipped or plain.

    Returns ``(x, image_shape)``: ``x`` [n, P] float32 in [0, 1] and, e.g., ``(28, 28)``.
    Raises FileNotFoundError for a missing file and ValueError for a wrong magic number,
    a non-byte element type, a label file (one dimension), or a size that disagrees with
    the header (truncated or padded).
    """
    raw = _read_bytes(path)
    where = f"path: {str(path)!r}"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{where} is not an IDX file (its first two bytes must be zero)")
    type_code, ndim = raw[2], raw[3]
    if type_code != _IDX_UBYTE:
        kind = _IDX_TYPE_NAMES.get(type_code, f"unknown type 0x{type_code:02X}")
        raise ValueError(f"{where} holds {kind} data; only unsigned-byte (0x08) IDX files are supported")
    if ndim < 2:
        raise ValueError(f"{where} has {ndim} dimension(s); image data needs at least 2 "
                         f"(a 1-dimensional IDX file holds labels)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{where} is truncated: {len(raw)} bytes, shorter than its {header}-byte header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims)
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"{where} is {state}: dimensions {dims} need {expected} bytes, found {len(raw)}")
    if dims[0] == 0:
        raise ValueError(f"{where} holds no images")
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims[0], -1)  # [n, P]
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0)
    return x, dims[1:]


def load_npz(path, key=None):
    """Images from one array of a ``.npz`` archive: ``(x [n, P] float32, image_shape)``.

    ``key`` names the array; it may be omitted when the archive holds exactly one. The array
    is [n, *image_shape]; uint8 is divided by 255, bool becomes 0/1, floating point is kept
    as stored and must be finite. Raises FileNotFoundError for a missing file and ValueError
    for an unreadable archive, a missing or ambiguous key, another dtype, NaN/inf, or fewer
    than two dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file: {str(path)!r}")
    unreadable = f"path: {str(path)!r} is not a readable .npz archive"
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{unreadable} ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{unreadable} (it holds a single .npy array)")
    with archive:
        keys = list(archive.keys())
        if key is None:
            if len(keys) != 1:
                raise ValueError(f"key: {str(path)!r} holds {len(keys)} arrays {keys}; pass key= to choose one")
            key = keys[0]
        if key not in keys:
            raise ValueError(f"key: {key!r} is not in {str(path)!r}; it holds {keys}")
        try:
            array = archive[key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{unreadable}: array {key!r} cannot be read ({err})") from None
    where = f"{str(path)!r}[{key!r}]"
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"{where}: expected an array [n, *image_shape] with n ≥ 1, got shape {array.shape}")
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.bool_ or np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
    else:
        raise ValueError(f"{where}: dtype {array.dtype} is not supported (uint8, bool or floating point)")
    if not np.isfinite(values).all():
        raise ValueError(f"{where}: contains NaN or inf")
    x = torch.from_numpy(values.reshape(array.shape[0], -1))  # [n, P]
    return x, tuple(array.shape[1:])


def load_data(spec) -> Dataset:
    """``"digits"``, a path to a ``.npz`` file (one array), or a path to an IDX file.

    A file's items are split into train and test by ``split`` (a fixed permutation).
    """
    if isinstance(spec, str) and spec == "digits":
        return load_digits()
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"spec: expected 'digits' or the path of a .npz or IDX file; "
                                f"no such file: {str(path)!r}")
    x, image_shape = load_npz(path) if path.suffix == ".npz" else load_idx(path)
    train, test = split(x)
    return Dataset(path.name, train, test, image_shape)
