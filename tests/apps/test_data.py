"""Built-in digits and the IDX / npz loaders (files made in tmp_path; nothing downloaded)."""
import gzip
import struct

import numpy as np
import pytest
import torch

from rdfast.apps.data import Dataset, load_data, load_digits, load_idx, load_npz, split


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file holding ``array`` (header: two zero bytes, type, ndim, big-endian dims)."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(7, 4, 3), dtype=np.uint8)  # [n, H, W]


# --- digits ----------------------------------------------------------------------------------

def test_digits_shapes_range_and_split():
    data = load_digits()
    assert isinstance(data, Dataset) and data.name == "digits"
    assert data.train.shape == (1497, 64) and data.test.shape == (300, 64)
    assert data.train.dtype == data.test.dtype == torch.float32
    assert data.image_shape == (8, 8)
    both = torch.cat([data.train, data.test])
    assert both.min() == 0.0 and both.max() == 1.0
    # the split is a permutation of all 1,797 images
    from sklearn.datasets import load_digits as sklearn_digits
    original = torch.from_numpy(sklearn_digits().data / 16.0).float()
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, original.tolist()))


def test_digits_are_deterministic():
    a, b = load_digits(), load_digits()
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)


def test_split_is_fixed_and_rejects_tiny_inputs():
    x = torch.arange(12.0).reshape(12, 1)
    train, test = split(x)
    assert train.shape == (10, 1) and test.shape == (2, 1)
    assert torch.equal(torch.cat([train, test]).sort(0).values, x)
    assert torch.equal(split(x)[1], test)
    with pytest.raises(ValueError, match="x: 2 items"):
        split(torch.zeros(2, 3))


# --- IDX -------------------------------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_round_trip(tmp_path, images, gzipped):
    raw = idx_bytes(images)
    path = tmp_path / ("images-idx3-ubyte" + (".gz" if gzipped else ""))
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    x, image_shape = load_idx(path)
    assert image_shape == (4, 3)
    assert x.dtype == torch.float32 and x.shape == (7, 12)
    assert torch.allclose(x, torch.from_numpy(images.reshape(7, 12) / 255.0).float())


def test_idx_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match="nowhere-idx3-ubyte"):
        load_idx(path)


@pytest.mark.parametrize("mangle, message", [
    (lambda raw: b"\x01" + raw[1:], "not an IDX file"),  # wrong magic
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "float32 data"),  # not unsigned bytes
    (lambda raw: raw[:-1], "truncated"),  # a pixel short
    (lambda raw: raw + b"\x00", "longer than its header"),  # trailing bytes
    (lambda raw: raw[:9], "truncated"),  # inside the header
    (lambda raw: raw[:3], "not an IDX file"),  # shorter than the magic number
    (lambda raw: b"", "not an IDX file"),  # empty
])
def test_idx_malformed_files(tmp_path, images, mangle, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(mangle(idx_bytes(images)))
    with pytest.raises(ValueError, match=message):
        load_idx(path)


def test_idx_rejects_label_files_and_empty_sets(tmp_path):
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.arange(5)))
    with pytest.raises(ValueError, match="labels"):
        load_idx(labels)
    empty = tmp_path / "empty-idx3-ubyte"
    empty.write_bytes(idx_bytes(np.zeros((0, 2, 2))))
    with pytest.raises(ValueError, match="no images"):
        load_idx(empty)


def test_idx_truncated_gzip(tmp_path, images):
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:-10])
    with pytest.raises(ValueError, match="gzip"):
        load_idx(path)


# --- npz -------------------------------------------------------------------------------------

def test_npz_dtypes(tmp_path, images):
    path = tmp_path / "set.npz"
    floats = np.random.default_rng(1).random((5, 2, 2))
    np.savez(path, bytes=images, floats=floats, flags=images > 128)
    x, shape = load_npz(path, "bytes")
    assert shape == (4, 3) and x.shape == (7, 12) and x.dtype == torch.float32
    assert torch.allclose(x, torch.from_numpy(images.reshape(7, 12) / 255.0).float())
    x, shape = load_npz(path, "floats")
    assert shape == (2, 2) and torch.allclose(x, torch.from_numpy(floats.reshape(5, 4)).float())
    x, _ = load_npz(path, "flags")
    assert set(x.unique().tolist()) <= {0.0, 1.0}


def test_npz_single_array_needs_no_key(tmp_path, images):
    path = tmp_path / "one.npz"
    np.savez(path, anything=images)
    assert load_npz(path)[0].shape == (7, 12)


def test_npz_key_errors(tmp_path, images):
    path = tmp_path / "two.npz"
    np.savez(path, a=images, b=images)
    with pytest.raises(ValueError, match=r"holds 2 arrays \['a', 'b'\]; pass key="):
        load_npz(path)
    with pytest.raises(ValueError, match="key: 'c' is not in"):
        load_npz(path, key="c")


@pytest.mark.parametrize("array, message", [
    (np.arange(12, dtype=np.int64).reshape(3, 4), "dtype int64 is not supported"),
    (np.ones((3, 4), dtype=np.complex64), "dtype complex64 is not supported"),
    (np.array([[0.5, np.nan]]), "NaN or inf"),
    (np.array([[0.5, np.inf]]), "NaN or inf"),
    (np.arange(4, dtype=np.uint8), "expected an array"),
    (np.zeros((0, 4), dtype=np.uint8), "expected an array"),
])
def test_npz_bad_arrays(tmp_path, array, message):
    path = tmp_path / "bad.npz"
    np.savez(path, x=array)
    with pytest.raises(ValueError, match=message):
        load_npz(path)


def test_npz_unreadable_files(tmp_path, images):
    missing = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        load_npz(garbage)
    single = tmp_path / "single.npz"
    with open(single, "wb") as file:
        np.save(file, images)
    with pytest.raises(ValueError, match="single .npy array"):
        load_npz(single)
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.array([[1, "a"]], dtype=object))
    with pytest.raises(ValueError, match="cannot be read"):
        load_npz(objects)


# --- load_data -------------------------------------------------------------------------------

def test_load_data_by_name_and_path(tmp_path, images):
    assert torch.equal(load_data("digits").test, load_digits().test)
    many = np.random.default_rng(2).integers(0, 256, size=(12, 2, 2), dtype=np.uint8)
    npz = tmp_path / "many.npz"
    np.savez(npz, x=many)
    idx = tmp_path / "many-idx3-ubyte.gz"
    idx.write_bytes(gzip.compress(idx_bytes(many)))
    for path in (npz, str(idx)):
        data = load_data(path)
        assert data.image_shape == (2, 2)
        assert data.train.shape == (10, 4) and data.test.shape == (2, 4)
    assert torch.equal(load_data(npz).test, load_data(idx).test)
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_data(tmp_path / "nothing.npz")
    with pytest.raises(FileNotFoundError, match="'digitz'"):
        load_data("digitz")
