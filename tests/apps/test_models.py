"""Demo model families, their trainers on the digits, checkpoints and the training cache."""
import pytest
import torch

from rdfast.apps import models as M
from rdfast.apps.data import load_digits
from rdfast.apps.train import (Trained, load_checkpoint, save_checkpoint, train_aae, train_dcgan, train_gan,
                          train_vae, trained)

K = 5

DECODERS = [
    lambda: M.VAEDecoder(K, hidden=32),
    lambda: M.AAEDecoder(K, hidden=32, depth=3),
    lambda: M.MLPGenerator(K, hidden=32, depth=1),
    lambda: M.DCGANGenerator(K, width=8),
    lambda: M.DCGANGenerator(K, image_size=12, channels=3, width=4, upsamplings=1),
]


@pytest.fixture(scope="module")
def digits():
    return load_digits().train  # [1497, 64]


def eval_copy(make):
    """A decoder whose BatchNorm statistics are not at their initial values, in eval mode."""
    torch.manual_seed(0)
    decoder = make()
    with torch.no_grad():
        decoder.train()
        decoder(torch.randn(32, K))
    return decoder.eval()


# --- models ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", DECODERS)
def test_decoder_contract(make):
    decoder = eval_copy(make)
    out = decoder(torch.randn(6, K))
    assert out.shape == (6, decoder.data_dim)
    assert ((out > 0) & (out < 1)).all()
    assert decoder.latent_dim == K
    assert decoder.distortion in ("gaussian_nll", "squared_error")
    assert decoder.logvar.shape == () and torch.isclose(decoder.logvar, torch.tensor(M.PAPER_LOGVAR))


@pytest.mark.parametrize("make", DECODERS)
def test_decoders_are_pure_functions_of_z_in_eval_mode(make):
    decoder = eval_copy(make)
    z = torch.randn(40, K)
    with torch.no_grad():
        first, second = decoder(z), decoder(z)
        alone = torch.cat([decoder(z[i:i + 1]) for i in range(0, 40, 7)])
        halves = torch.cat([decoder(z[:13]), decoder(z[13:])])
    assert torch.equal(first, second)
    assert torch.allclose(alone, first[::7], atol=1e-6)
    assert torch.allclose(halves, first, atol=1e-6)


@pytest.mark.parametrize("make", DECODERS)
def test_build_remakes_the_architecture(make):
    decoder = make()
    copy = M.build(type(decoder).__name__, decoder.config)
    copy.load_state_dict(decoder.state_dict())
    z = torch.randn(3, K)
    assert torch.equal(copy.eval()(z), decoder.eval()(z))


def test_vae_logvar_is_learned_and_others_are_fixed():
    vae = M.VAEDecoder(K)
    assert "logvar" in dict(vae.named_parameters()) and vae.distortion == "gaussian_nll"
    for decoder in (M.AAEDecoder(K), M.MLPGenerator(K), M.DCGANGenerator(K)):
        assert "logvar" in dict(decoder.named_buffers())
        assert "logvar" not in dict(decoder.named_parameters())
        assert decoder.distortion == "squared_error"


def test_training_networks_shapes():
    x = torch.rand(6, 64)
    mean, logvar = M.VAEEncoder(K)(x)
    assert mean.shape == logvar.shape == (6, K)
    assert M.AAEEncoder(K)(x).shape == (6, K)
    assert M.LatentDiscriminator(K)(torch.randn(6, K)).shape == (6,)
    assert M.MLPCritic()(x).shape == (6,)
    assert M.ConvCritic(width=8)(x).shape == (6,)
    assert M.ConvCritic(image_size=12, channels=3, downsamplings=1)(torch.rand(6, 432)).shape == (6,)


def test_model_argument_errors():
    with pytest.raises(ValueError, match="latent_dim: expected a positive integer"):
        M.VAEDecoder(0)
    with pytest.raises(ValueError, match="hidden"):
        M.MLPGenerator(K, hidden=2.5)
    with pytest.raises(ValueError, match="image_size: 10 is not divisible by 2\\*\\*upsamplings = 4"):
        M.DCGANGenerator(K, image_size=10)
    with pytest.raises(ValueError, match="name: unknown model class 'Nope'"):
        M.build("Nope", {})


# --- trainers --------------------------------------------------------------------------------

def nearest_sq_distance(decoder, data):
    """Mean squared distance from 200 fixed samples to their nearest data row."""
    z = torch.randn(200, decoder.latent_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return torch.cdist(decoder(z), data).min(1).values.pow(2).mean().item()


def test_vae_lowers_its_loss(digits):
    result = train_vae(digits, K, epochs=6)
    loss = result.history["loss"]
    assert isinstance(result, Trained) and len(loss) == 6
    assert loss[-1] < loss[0] - 20  # nats per item
    assert not result.decoder.training and not result.models["encoder"].training


def test_aae_lowers_its_reconstruction_error(digits):
    result = train_aae(digits, K, epochs=6)
    error = result.history["reconstruction"]
    assert error[-1] < 0.6 * error[0]
    assert set(result.models) == {"decoder", "encoder", "discriminator"}
    assert all(len(values) == 6 for values in result.history.values())


@pytest.mark.parametrize("trainer, options", [
    (train_gan, dict(epochs=8)),
    (train_dcgan, dict(epochs=10)),
])
def test_gans_learn_the_digits(digits, trainer, options):
    torch.manual_seed(0)
    untrained = M.MLPGenerator(K) if trainer is train_gan else M.DCGANGenerator(K)
    result = trainer(digits, K, **options)
    wasserstein = result.history["wasserstein"]
    assert wasserstein[-1] < 0.95 * max(wasserstein)  # the critic's estimate falls after its peak
    assert all(map(torch.isfinite, map(torch.tensor, result.history["generator"])))
    assert nearest_sq_distance(result.decoder, digits) < 0.75 * nearest_sq_distance(untrained.eval(), digits)


@pytest.mark.parametrize("trainer", [train_vae, train_aae, train_gan, train_dcgan])
def test_trainers_are_deterministic_and_keep_global_state(digits, trainer):
    options = dict(epochs=1, width=4) if trainer is train_dcgan else dict(epochs=1, hidden=16)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = trainer(digits[:300], K, seed=4, **options)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    b = trainer(digits[:300], K, seed=4, **options)
    c = trainer(digits[:300], K, seed=5, **options)
    z = torch.randn(8, K)
    with torch.no_grad():
        assert torch.equal(a.decoder(z), b.decoder(z))
        assert not torch.equal(a.decoder(z), c.decoder(z))
    assert a.history == b.history


def test_progress_reports_about_ten_lines(digits):
    for epochs, expected in ((20, 10), (15, 8), (3, 3)):
        lines = []
        train_vae(digits[:200], K, hidden=16, epochs=epochs, progress=lines.append)
        assert len(lines) == expected and lines[-1].startswith(f"vae epoch {epochs}/{epochs}  loss ")


def test_trainer_argument_errors(digits):
    with pytest.raises(TypeError, match="data: expected a torch.Tensor"):
        train_vae(digits.numpy(), K)
    with pytest.raises(ValueError, match="data: expected shape"):
        train_vae(digits[0], K)
    with pytest.raises(ValueError, match="data: contains NaN"):
        train_vae(torch.full((4, 3), float("nan")), K)
    with pytest.raises(ValueError, match="epochs"):
        train_aae(digits, K, epochs=0)
    with pytest.raises(ValueError, match="n_critic"):
        train_gan(digits, K, n_critic=0)
    with pytest.raises(ValueError, match="data: 60 values per row"):
        train_dcgan(torch.rand(10, 60), K)
    with pytest.raises(TypeError, match="progress"):
        train_vae(digits[:10], K, epochs=1, progress="yes")


# --- checkpoints and the cache ---------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path, digits):
    result = train_dcgan(digits[:400], K, width=4, epochs=1)  # 6 critic batches: one generator step
    z = torch.randn(10, K)
    path = tmp_path / "sub" / "dcgan.pt"
    save_checkpoint(path, result.models, {"note": "test", "k": K}, result.history)
    models, config, history = load_checkpoint(path)
    assert config == {"note": "test", "k": K} and history == result.history
    assert set(models) == {"decoder", "critic"}
    assert not models["decoder"].training
    with torch.no_grad():
        assert torch.equal(models["decoder"](z), result.decoder(z))
        assert torch.equal(models["critic"](digits[:5]), result.models["critic"](digits[:5]))
    assert [p.name for p in path.parent.iterdir()] == ["dcgan.pt"]  # no temporary files left

    single = tmp_path / "single.pt"
    save_checkpoint(single, result.decoder, {})
    decoder, config, history = load_checkpoint(single)
    assert isinstance(decoder, M.DCGANGenerator) and history is None
    with torch.no_grad():
        assert torch.equal(decoder(z), result.decoder(z))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(TypeError, match="model: model is a Linear"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2), {})
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_checkpoint(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a trained rdfast model"):
        load_checkpoint(other)


def test_trained_caches_by_config(tmp_path, digits):
    data = digits[:200]
    messages = []
    first = trained("vae", K, tmp_path, data=data, progress=messages.append, hidden=16, epochs=2)
    assert messages[-1].startswith("vae: saved ")
    messages.clear()
    second = trained("vae", K, tmp_path, data=data, progress=messages.append, hidden=16, epochs=2)
    assert messages == [f"vae: loaded {next(tmp_path.iterdir())}"]
    z = torch.randn(4, K)
    with torch.no_grad():
        assert torch.equal(first.decoder(z), second.decoder(z))
        assert torch.equal(first.models["encoder"](data[:3])[0], second.models["encoder"](data[:3])[0])
    assert second.history == first.history and second.config == first.config
    assert first.config["kind"] == "vae" and first.config["seed"] == 0 and first.config["lr"] == 2e-3

    trained("vae", K, tmp_path, data=data, hidden=16, epochs=2, seed=1)  # another seed
    trained("vae", K, tmp_path, data=data[:100], hidden=16, epochs=2)  # other data
    assert len(list(tmp_path.iterdir())) == 3


def test_trained_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="kind: expected one of"):
        trained("flow", K, tmp_path)
    with pytest.raises(TypeError, match="options: .*train_gan"):
        trained("gan", K, tmp_path, data=torch.rand(10, 64), widht=3)
