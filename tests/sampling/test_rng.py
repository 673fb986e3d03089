import torch

from rdfast.sampling import rng


def test_philox_known_answers():
    # Known-answer vectors of Philox-4x32-10 (Salmon et al., SC'11, Random123 distribution).
    zero = torch.tensor(0)
    assert [int(w) for w in rng.philox(0, zero, zero, zero, zero)] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    ones = torch.tensor(0xFFFFFFFF)
    out = rng.philox(0xFFFFFFFFFFFFFFFF, ones, ones, ones, ones)
    assert [int(w) for w in out] == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]


def test_normal_moments():
    x = rng.normal(7, torch.arange(200), 16, 10, 3, rng.STREAM_MOMENTUM)  # 32,000 draws
    se = 1 / 32000 ** 0.5
    assert abs(x.mean().item()) < 5 * se
    assert abs(x.var().item() - 1) < 5 * (2 ** 0.5) * se


def test_uniform_range_and_mean():
    u = rng.uniform(7, torch.arange(500), 16, 3, rng.STREAM_ACCEPT)  # 8,000 draws
    assert (u > 0).all() and (u < 1).all()
    assert abs(u.mean().item() - 0.5) < 5 * (1 / 12 / 8000) ** 0.5


def test_streams_depend_only_on_key():
    """Rows of items 3..5 are the same whether drawn alone or with items 0..9 (batch invariance)."""
    full = rng.normal(1, torch.arange(10), 4, 7, 11, rng.STREAM_MOMENTUM)
    part = rng.normal(1, torch.arange(3, 6), 4, 7, 11, rng.STREAM_MOMENTUM)
    assert torch.equal(full[12:24], part)
    other = [rng.normal(2, torch.arange(10), 4, 7, 11, 0), rng.normal(1, torch.arange(10), 4, 7, 12, 0),
             rng.normal(1, torch.arange(10), 4, 7, 11, 1)]
    for o in other:
        assert not torch.equal(full, o)
