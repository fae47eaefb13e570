"""The training-recipe options: prediction targets, Min-SNR weights, power-function EMA, time budget."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from thermogen.losses.denoising import denoising_loss, denoising_target, snr_weight
from thermogen.models.ddpm_unet import DDPMUNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig
from thermogen.training.ema import PowerEMA

# -- targets and weights against their formulas ------------------------------------------


def test_v_target_is_signal_times_noise_minus_noise_rate_times_data() -> None:
    x0, eps = torch.tensor([[0.5], [-1.0]]), torch.tensor([[2.0], [0.25]])
    a, s = torch.tensor([[0.6], [0.8]]), torch.tensor([[0.8], [0.6]])
    assert torch.equal(denoising_target(x0, eps, a, s, "epsilon"), eps)
    v = denoising_target(x0, eps, a, s, "v")
    torch.testing.assert_close(v, torch.tensor([[0.6 * 2.0 - 0.8 * 0.5], [0.8 * 0.25 + 0.6 * 1.0]]))
    # the defining property: x0 = a x_t - s v (Salimans & Ho 2022)
    torch.testing.assert_close(a * (a * x0 + s * eps) - s * v, x0)


def test_min_snr_weights_closed_form() -> None:
    gamma = 5.0
    a = torch.tensor([1.0, 0.99, 0.9, 0.5, 0.1, 0.0], dtype=torch.float64)
    s = torch.sqrt(1 - a**2)
    snr = (a / s) ** 2
    expected_eps = [min(float(r), gamma) / float(r) if r > 0 else 1.0 for r in snr]
    expected_eps[0] = 0.0  # SNR = inf: gamma / inf
    torch.testing.assert_close(snr_weight(a, s, "epsilon", "min_snr", gamma), torch.tensor(expected_eps).double())
    expected_v = [min(float(r), gamma) / (float(r) + 1) if math.isfinite(r) else 0.0 for r in snr]
    expected_v[0] = 0.0  # min(inf, 5) / inf
    got_v = snr_weight(a[1:], s[1:], "v", "min_snr", gamma)
    torch.testing.assert_close(got_v, torch.tensor(expected_v[1:]).double())
    assert torch.equal(snr_weight(a, s, "epsilon", "none"), torch.ones(6, dtype=torch.float64))
    # below SNR = gamma the epsilon weight is 1: only nearly clean images are down-weighted
    at_gamma = snr_weight(torch.tensor([math.sqrt(5 / 6)]), torch.tensor([math.sqrt(1 / 6)]), "epsilon", "min_snr")
    assert float(at_gamma) == pytest.approx(1.0)


def test_weighted_loss_is_the_weighted_mean_of_per_image_errors() -> None:
    prediction = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [2.0, -2.0]])
    weight = torch.tensor([0.5, 2.0])
    assert float(denoising_loss(prediction, target, weight, "mae")) == pytest.approx((0.5 * 2.0 + 2.0 * 2.0) / 2)
    assert float(denoising_loss(prediction, target, weight, "mse")) == pytest.approx((0.5 * 5.0 + 2.0 * 4.0) / 2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: snr_weight(torch.ones(1), torch.ones(1), "x0", "min_snr"), "prediction target 'x0'"),
        (lambda: snr_weight(torch.ones(1), torch.ones(1), "epsilon", "edm"), "loss weighting 'edm'"),
        (lambda: denoising_target(torch.ones(1), torch.ones(1), torch.ones(1), torch.ones(1), "x0"), "'x0'"),
        (lambda: denoising_loss(torch.ones(1, 1), torch.ones(1, 1), torch.ones(1), "huber"), "'huber'"),
        (lambda: DiffusionTrainingConfig(loss_weighting="edm"), "loss_weighting='edm'"),  # type: ignore[arg-type]
        (lambda: DiffusionTrainingConfig(prediction_type="x0"), "prediction_type='x0'"),  # type: ignore[arg-type]
        (lambda: DiffusionTrainingConfig(min_snr_gamma=0.0), "min_snr_gamma=0.0"),
        (lambda: DiffusionTrainingConfig(ema_power=-1.0), "ema_power=-1.0"),
    ],
)
def test_bad_recipe_values_are_named(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


# -- the power-function EMA ----------------------------------------------------------------


def test_power_ema_equals_its_closed_form_average() -> None:
    """After T updates with raw weights theta_1..theta_T, the average weights theta_t by
    (1 - (1 - 1/t)^(g+1)) (t/T)^(g+1), since prod_{s=t+1..T} (1 - 1/s)^(g+1) = (t/T)^(g+1)."""
    gamma, T = 6.94, 300
    model = torch.nn.Linear(1, 1, bias=False)
    ema = PowerEMA(model, gamma)
    thetas = torch.randn(T, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for update, theta in enumerate(thetas):
        with torch.no_grad():
            model.weight.fill_(float(theta))
        ema.update(model, update)
    t = torch.arange(1, T + 1, dtype=torch.float64)
    weights = (1 - (1 - 1 / t) ** (gamma + 1)) * (t / T) ** (gamma + 1)
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    assert float(ema.model.weight) == pytest.approx(float((weights * thetas).sum()), abs=1e-5)
    assert ema.decay_at(0) == 0.0  # the initialisation is forgotten at the first update
    assert PowerEMA.relative_width(6.94) == pytest.approx(0.10, abs=5e-4)
    assert PowerEMA.relative_width(16.97) == pytest.approx(0.05, abs=5e-4)


def test_power_ema_horizon_grows_with_the_run() -> None:
    ema = PowerEMA(torch.nn.Linear(1, 1), 6.94)
    half_lives = []
    for t in (100, 1_000, 10_000):
        half_lives.append(math.log(0.5) / math.log(ema.decay_at(t - 1)))
    # the half-life in updates is proportional to t: about t * ln 2 / (gamma + 1)
    assert half_lives[1] / half_lives[0] == pytest.approx(10, rel=0.02)
    assert half_lives[2] == pytest.approx(10_000 * math.log(2) / 7.94, rel=0.01)


# -- the trainer with these options ---------------------------------------------------------


class Blobs(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.images = torch.zeros(32, 1, 8, 8)
        for i in range(32):
            r, c = divmod(i % 4, 2)
            self.images[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] = 1.0

    def __len__(self) -> int:
        return 32

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def pipeline(data: Blobs, prediction_type: str = "epsilon") -> DiffusionPipeline:
    """A DDPM U-Net that outputs ``prediction_type`` (the model's setting) with the book's DDIM."""
    torch.manual_seed(0)
    model = DDPMUNet(1, 8, widths=(8, 16), block_depth=1)
    model.set_prediction_type(prediction_type)
    return DiffusionPipeline(model, OffsetCosineSchedule(), DDIMSampler(spacing="uniform"), Normalizer.fit(data.images))


def recipe(steps: int, **overrides: object) -> DiffusionTrainingConfig:
    fields: dict = dict(steps=steps, batch_size=8, log_every=1, checkpoint_every=2, sample_every=100, sample_images=2)
    fields.update(sample_steps=2, loss="mse", prediction_type="v", loss_weighting="min_snr", ema_power=6.94)
    fields.update(overrides)
    return DiffusionTrainingConfig(**fields)


def test_one_step_loss_equals_the_formula_on_a_fixed_batch(tmp_path: Path) -> None:
    data = Blobs()
    trainer = DiffusionTrainer(pipeline(data, "v"), data, tmp_path, recipe(1))
    generator = trainer.step_generator(per_process=False)
    images = data.images[:8]
    got = trainer.loss_on(images, trainer.step_generator(per_process=False))
    # by hand: the same draws, in the same order
    x0 = trainer.pipeline.normalizer.normalize(images)
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.rand(8, generator=generator, dtype=torch.float64)
    a, s = (r.float().reshape(8, 1, 1, 1) for r in OffsetCosineSchedule().rates64(t))
    v = a * noise - s * x0
    snr = (a / s).reshape(8).double() ** 2
    weight = torch.minimum(snr, torch.tensor(5.0, dtype=torch.float64)) / (snr + 1)
    prediction = trainer.model(a * x0 + s * noise, s.reshape(8))
    expected = (weight.float() * (prediction - v).square().flatten(1).mean(1)).mean()
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_the_model_must_output_what_training_targets(tmp_path: Path) -> None:
    data = Blobs()
    with pytest.raises(ValueError, match=r"model outputs prediction_type='epsilon'.*training uses prediction_type='v'"):
        DiffusionTrainer(pipeline(data, "epsilon"), data, tmp_path, recipe(1))


def test_v_target_run_resumes_exactly_and_saves_its_prediction_type(tmp_path: Path) -> None:
    data = Blobs()
    DiffusionTrainer(pipeline(data, "v"), data, tmp_path / "a", recipe(4)).train(progress=False)
    DiffusionTrainer(pipeline(data, "v"), data, tmp_path / "b", recipe(2)).train(progress=False)
    saved = Pipeline.from_pretrained(tmp_path / "b" / "checkpoint" / "pipeline")
    assert saved.model.prediction_type == "v"  # type: ignore[attr-defined]  # saved in the model's config
    assert saved.model.to_config()["prediction_type"] == "v" and "prediction_type" not in saved.sampler.to_config()
    resumed = DiffusionTrainer(saved, data, tmp_path / "b", recipe(4))  # type: ignore[arg-type]
    resumed.load_checkpoint()
    resumed.train(progress=False)
    straight = Pipeline.from_pretrained(tmp_path / "a" / "checkpoint" / "pipeline")
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.pipeline.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_a_time_budget_stops_with_a_checkpoint(tmp_path: Path) -> None:
    data = Blobs()
    trainer = DiffusionTrainer(pipeline(data, "v"), data, tmp_path, recipe(1000))
    trainer.train(progress=False, time_budget_s=0.0)
    assert trainer.step == 1
    resumed = DiffusionTrainer(pipeline(data, "v"), data, tmp_path, recipe(1000))
    resumed.load_checkpoint()
    assert resumed.step == 1
