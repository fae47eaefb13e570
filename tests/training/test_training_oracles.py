"""Trainers against hand-written oracles: one step's loss, the EMA recursion, the EBM gradient, data order."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from thermogen.buffers import ReplayBuffer
from thermogen.interfaces import EnergyModel
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.batches import EpochBatches
from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig
from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig


def blobs(n: int = 32, size: int = 8) -> torch.utils.data.TensorDataset:
    """Images in [0, 1] with a bright square at one of four places, plus a little texture."""
    images = 0.1 * torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(5))
    for i in range(n):
        r, c = divmod(i % 4, 2)
        images[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] = 0.9
    dataset = torch.utils.data.TensorDataset(images)
    dataset.images = images  # type: ignore[attr-defined]  # the trainers' fast path
    return dataset


def diffusion_trainer(tmp_path: Path, **overrides: object) -> DiffusionTrainer:
    data = blobs()
    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    torch.nn.init.normal_(model.head.weight, std=0.2)  # a non-zero prediction, so the input matters to the loss
    model.set_prediction_type(str(overrides.get("prediction_type", "epsilon")))  # what the training targets
    pipe = DiffusionPipeline(model, OffsetCosineSchedule(), DDIMSampler(), Normalizer([0.3], [0.4]))
    settings: dict = {"steps": 8, "batch_size": 8, "log_every": 1, "checkpoint_every": 100, "sample_every": 100}
    return DiffusionTrainer(pipe, data, tmp_path, DiffusionTrainingConfig(**{**settings, **overrides}))


def hand_loss(
    trainer: DiffusionTrainer, loss: str, autocast: bool = False, target: str = "epsilon", gamma: float | None = None
) -> float:
    """The denoising loss of the current step from the formulas, on a copy of the raw model.

    ``target``: "epsilon" regresses the noise, "v" regresses ``a eps - s x0``; ``gamma``: Min-SNR
    weights ``min(1, gamma / SNR)`` (epsilon) or ``min(SNR, gamma) / (SNR + 1)`` (v) per image.
    """
    images = trainer.dataset.images[trainer.batches.indices(trainer.step)]  # type: ignore[attr-defined]
    generator = trainer.step_generator(per_process=False)
    x0 = (images - 0.3) / 0.4
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.rand(x0.shape[0], generator=generator, dtype=torch.float64)
    start, end = math.acos(0.95), math.acos(0.02)  # offset cosine: angle linear in t
    angle = start + t * (end - start)
    signal, noise_rate = torch.cos(angle).float().reshape(-1, 1, 1, 1), torch.sin(angle).float().reshape(-1, 1, 1, 1)
    model = copy.deepcopy(trainer.model)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        predicted = model(signal * x0 + noise_rate * noise, noise_rate.reshape(-1)).float()
    wanted = noise if target == "epsilon" else signal * noise - noise_rate * x0
    error = predicted - wanted
    per_image = (error.abs() if loss == "mae" else error.square()).flatten(1).mean(1).double()
    if gamma is None:
        return float(per_image.mean())
    snr = torch.cos(angle) ** 2 / torch.sin(angle) ** 2
    weight = (gamma / snr).clamp(max=1.0) if target == "epsilon" else snr.clamp(max=gamma) / (snr + 1)
    return float((weight * per_image).mean())


@pytest.mark.parametrize(("target", "gamma"), [("v", None), ("epsilon", 5.0), ("v", 2.0)])
def test_one_step_loss_with_v_target_and_min_snr_weights(tmp_path: Path, target: str, gamma: float | None) -> None:
    weighting = {} if gamma is None else {"loss_weighting": "min_snr", "min_snr_gamma": gamma}
    trainer = diffusion_trainer(tmp_path, prediction_type=target, **weighting)
    for _ in range(2):
        expected = hand_loss(trainer, "mae", target=target, gamma=gamma)
        assert float(trainer.train_step()["loss"]) == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("loss", ["mae", "mse"])
def test_one_step_loss_equals_the_hand_computed_loss(tmp_path: Path, loss: str) -> None:
    trainer = diffusion_trainer(tmp_path, loss=loss)
    for _ in range(3):  # steps 0, 1, 2: the check holds after the weights have moved too
        expected = hand_loss(trainer, loss)
        assert float(trainer.train_step()["loss"]) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_mixed_precision_loss_is_the_bfloat16_autocast_loss(tmp_path: Path) -> None:
    trainer = diffusion_trainer(tmp_path, mixed_precision=True)
    expected_fp32 = hand_loss(trainer, "mae")
    expected_bf16 = hand_loss(trainer, "mae", autocast=True)
    got = float(trainer.train_step()["loss"])
    assert got == pytest.approx(expected_bf16, rel=1e-4)
    assert got != expected_fp32 and got == pytest.approx(expected_fp32, rel=0.03)  # autocast is on, and close


def test_ema_weights_are_the_closed_form_average_of_the_raw_weights(tmp_path: Path) -> None:
    decay = 0.8
    trainer = diffusion_trainer(tmp_path, ema_decay=decay)
    average = {k: v.double().clone() for k, v in trainer.model.state_dict().items()}
    for n in range(6):
        trainer.train_step()
        d = min(decay, (1 + n) / (10 + n))  # TensorFlow's num_updates warm-up, update n counted from 0
        for key, raw in trainer.model.state_dict().items():
            average[key] = d * average[key] + (1 - d) * raw.double() if raw.is_floating_point() else raw.double()
    ema = trainer.ema.model.state_dict()
    assert trainer.pipeline.model is trainer.ema.model
    for key, value in average.items():
        assert torch.allclose(ema[key].double(), value, atol=1e-6), key
    moved = [k for k, v in ema.items() if v.is_floating_point() and not torch.equal(v, trainer.model.state_dict()[k])]
    assert moved  # the EMA is not simply the raw weights


def test_constant_decay_without_warmup(tmp_path: Path) -> None:
    trainer = diffusion_trainer(tmp_path, ema_decay=0.5, ema_warmup=False)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
    trainer.train_step()
    for key, raw in trainer.model.state_dict().items():
        if key in start:
            assert torch.allclose(trainer.ema.model.state_dict()[key], 0.5 * start[key] + 0.5 * raw, atol=1e-6), key


def test_every_epoch_is_a_fresh_permutation_of_the_data() -> None:
    batches = EpochBatches(num_items=12, batch_size=4, seed=3)
    epochs = [torch.cat([batches.indices(e * 3 + i) for i in range(3)]) for e in range(6)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(12))  # each epoch visits every item once
    assert len({tuple(order.tolist()) for order in epochs}) == 6  # and in a new order each time
    again = EpochBatches(num_items=12, batch_size=4, seed=3)
    assert torch.equal(again.indices(7), batches.indices(7))  # a pure function of (seed, step)


# ---- EBM: the gradient of cdiv + reg on a linear energy ----------------------------------------------


class LinearEnergy(EnergyModel):
    """E(x) = w · flatten(x) + b: the loss gradient has a closed form in the batch."""

    def __init__(self, size: int = 4) -> None:
        super().__init__()
        self.size = size
        self.linear = nn.Linear(size * size, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.linspace(-1.0, 1.0, size * size))
            self.linear.bias.fill_(2.0)  # energies far from 0, so the regulariser's pull is large

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (1, self.size, self.size)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1)).squeeze(1)


def test_ebm_step_gradient_is_the_clipped_gradient_of_cdiv_plus_reg(tmp_path: Path) -> None:
    images = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    dataset = torch.utils.data.TensorDataset(images)
    dataset.images = images  # type: ignore[attr-defined]
    sampler = SGLDSampler(num_steps=3, step_size=0.1, noise_std=0.05)
    pipe = EBMPipeline(LinearEnergy(), sampler, ReplayBuffer(capacity=32, sample_shape=(1, 4, 4)))
    alpha, clip, real_noise = 0.3, 0.05, 0.2
    config = EBMTrainingConfig(
        steps=1,
        batch_size=8,
        alpha=alpha,
        grad_clip=clip,
        real_noise=real_noise,
        langevin_steps=3,
        log_every=1,
        checkpoint_every=10,
        sample_every=10,
    )
    trainer = EBMTrainer(pipe, dataset, tmp_path, config)
    trainer.buffer.push(torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1)
    weight, bias = trainer.model.linear.weight.detach().double().clone(), trainer.model.linear.bias.detach().double()
    real = images[trainer.batches.indices(0)]
    generator = trainer.step_generator(per_process=True)
    real = (real + real_noise * torch.randn(real.shape, generator=generator)).clamp(-1.0, 1.0).double()

    metrics = trainer.train_step()
    fake = trainer.buffer.storage[:8].double()  # the buffer was full (pointer 0): the refined fakes went to rows 0-7
    w = weight.clone().requires_grad_(True)
    e_real, e_fake = real.flatten(1) @ w.T + bias, fake.flatten(1) @ w.T + bias
    cdiv = e_real.mean() - e_fake.mean()
    reg = alpha * (e_real.square() + e_fake.square()).mean()
    (grad,) = torch.autograd.grad(cdiv + reg, w)
    clipped = grad * min(1.0, clip / float(torch.cat([grad.flatten(), _bias_grad(e_real, e_fake, alpha)]).norm()))
    assert float(metrics["loss"]) == pytest.approx(float((cdiv + reg).detach()), rel=1e-5)
    assert float(metrics["reg"]) == pytest.approx(float(reg.detach()), rel=1e-5)
    assert torch.allclose(trainer.model.linear.weight.grad.double(), clipped, rtol=1e-4, atol=1e-7)


def _bias_grad(e_real: Tensor, e_fake: Tensor, alpha: float) -> Tensor:
    """d(cdiv + reg)/db: the cdiv terms cancel; reg gives alpha * mean(2 E+ + 2 E-) over the pairs."""
    return (alpha * (2 * e_real + 2 * e_fake).mean()).detach().reshape(1)


# ---- the CLI on the real MNIST files (skips when ../shared/data/mnist is absent) ----------------------


def test_train_diffusion_on_mnist_from_the_cli(mnist_dir: Path, tmp_path: Path) -> None:
    from thermogen.cli import main
    from thermogen.pipelines.base import Pipeline

    out = tmp_path / "run"
    args = [
        "train",
        "diffusion",
        "--dataset",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--widths",
        "4,8",
        "--block-depth",
        "1",
        "--out",
        str(out),
        "--log-every",
        "1",
        "--sample-every",
        "100",
        "--checkpoint-every",
        "2",
        "--no-progress",
    ]
    assert main(args) == 0
    pipe = Pipeline.from_pretrained(out / "checkpoint" / "pipeline")
    assert pipe.sample_shape() == (1, 32, 32)
    # the normalizer was fitted on MNIST padded to 32x32: mean ≈ 0.1 and std ≈ 0.3 of the [0, 1] pixels
    assert pipe.normalizer.mean[0] == pytest.approx(0.1, abs=0.03) and pipe.normalizer.std[0] == pytest.approx(
        0.28, abs=0.04
    )
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
