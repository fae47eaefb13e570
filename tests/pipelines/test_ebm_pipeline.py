"""EBMPipeline and contrastive-divergence training: round trips, exact resume, OOD ordering, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from thermogen.buffers import ReplayBuffer
from thermogen.errors import ConfigError, TrainingDivergedError
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.samplers.energy import MALASampler, SGLDSampler
from thermogen.testing import GaussianMixture, GaussianMixtureEnergy
from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig

BOOK_SNAPSHOTS = (0, 1, 3, 5, 10, 30, 50, 100, 300, 999)


def make_pipeline(size: int = 8, langevin_steps: int = 5) -> EBMPipeline:
    model = EnergyCNN(1, size, widths=(4, 8), hidden=8)
    model.reset_parameters(torch.Generator().manual_seed(0))
    return EBMPipeline(
        model,
        SGLDSampler(num_steps=langevin_steps),
        ReplayBuffer(capacity=64, sample_shape=(1, size, size)),
        num_inference_steps=20,
    )


class Digits(torch.utils.data.Dataset):
    """Tiny stand-in data in [-1, 1]: a vertical bar ("1") in random columns."""

    def __init__(self, n: int = 64, size: int = 8) -> None:
        generator = torch.Generator().manual_seed(0)
        images = -torch.ones(n, 1, size, size)
        columns = torch.randint(2, size - 2, (n,), generator=generator)
        for i, c in enumerate(columns):
            images[i, 0, 1:-1, c] = 1.0
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def config(steps: int, **kwargs: object) -> EBMTrainingConfig:
    base = {
        "steps": steps,
        "batch_size": 8,
        "langevin_steps": 5,
        "log_every": 2,
        "checkpoint_every": 2,
        "sample_every": 1000,
        "sample_images": 4,
        "sample_chain_steps": 5,
    }
    return EBMTrainingConfig(**{**base, **kwargs})  # type: ignore[arg-type]


def test_generation_snapshots_and_output_range() -> None:
    pipe = make_pipeline(langevin_steps=5)
    out = pipe(
        batch_size=3,
        num_inference_steps=1000,
        generator=torch.Generator().manual_seed(0),
        snapshot_steps=BOOK_SNAPSHOTS,
        output_type="tensor",
        progress=False,
    )
    assert out.images.shape == (3, 1, 8, 8) and out.images.min() >= 0 and out.images.max() <= 1
    assert out.snapshots is not None and out.snapshots.shape == (10, 3, 1, 8, 8)
    assert out.snapshot_steps == list(BOOK_SNAPSHOTS)
    assert torch.equal(out.snapshots[-1], out.images)


def test_same_seed_same_samples_also_after_save_and_load(tmp_path: Path) -> None:
    pipe = make_pipeline()
    pipe.buffer.push(torch.rand(10, 1, 8, 8) * 2 - 1)
    before = pipe(batch_size=4, generator=torch.Generator().manual_seed(1), output_type="tensor", progress=False).images
    pipe.save_pretrained(tmp_path / "ebm")
    assert sorted(p.name for p in (tmp_path / "ebm").iterdir()) == [
        "README.md",
        "buffer",
        "energy_model",
        "model_index.json",
        "sampler",
    ]
    loaded = Pipeline.from_pretrained(tmp_path / "ebm")
    assert isinstance(loaded, EBMPipeline) and len(loaded.buffer) == 10
    after = loaded(
        batch_size=4, generator=torch.Generator().manual_seed(1), output_type="tensor", progress=False
    ).images
    assert torch.equal(before, after)
    from_buffer = loaded(
        batch_size=4,
        num_inference_steps=1,
        initial_state="buffer",
        generator=torch.Generator().manual_seed(1),
        output_type="tensor",
        progress=False,
    )
    assert from_buffer.images.shape == (4, 1, 8, 8)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p(batch_size=0), "batch_size=0; expected a positive integer"),
        (lambda p: p(initial_state="gaussian"), "initial_state='gaussian'; expected 'uniform', 'buffer' or a tensor"),
        (
            lambda p: p(initial_state=torch.rand(2, 3, 8, 8)),
            r"initial_state has shape \(2, 3, 8, 8\); expected \(B, 1, 8, 8\)",
        ),
        (lambda p: p.energy(torch.full((1, 1, 8, 8), float("nan"))), "images contains NaN"),
        (lambda p: p.energy(torch.rand(1, 1, 16, 16)), r"images has shape \(1, 1, 16, 16\)"),
        (lambda p: p(num_inference_steps=0), "num_inference_steps=0 of type int; expected a positive integer"),
        (lambda p: p(num_inference_steps=10, snapshot_steps=[10]), r"snapshot_steps \[10\] are outside \[0, 10\)"),
    ],
)
def test_bad_inputs_are_named(call: object, message: str) -> None:
    pipe = make_pipeline()
    with pytest.raises(ValueError, match=message):
        call(pipe)  # type: ignore[operator]


def test_buffer_init_needs_a_filled_buffer() -> None:
    pipe = make_pipeline()
    with pytest.raises(ValueError, match="no \\(filled\\) replay buffer"):
        pipe(initial_state="buffer")


def test_n_steps_straight_equals_half_plus_resume_plus_half(tmp_path: Path) -> None:
    data = Digits()
    straight = EBMTrainer(make_pipeline(), data, tmp_path / "a", config(6))
    straight.train(progress=False)

    EBMTrainer(make_pipeline(), data, tmp_path / "b", config(4)).train(progress=False)
    resumed = EBMTrainer(
        Pipeline.from_pretrained(tmp_path / "b" / "checkpoint" / "pipeline"), data, tmp_path / "b", config(6)
    )
    resumed.load_checkpoint()
    assert resumed.step == 4
    resumed.train(progress=False)

    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert torch.allclose(straight.buffer.storage, resumed.buffer.storage, atol=1e-6)
    assert straight.buffer.count == resumed.buffer.count
    entries = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert {"loss", "reg", "cdiv", "real", "fake", "step"} <= set(entries[0])


def test_divergence_stops_with_a_clear_message(tmp_path: Path) -> None:
    trainer = EBMTrainer(make_pipeline(), Digits(), tmp_path, config(2))
    trainer.train(progress=False)
    trainer.config.steps = 4
    trainer.config.energy_bound = 1e-9
    with pytest.raises(TrainingDivergedError, match="energies diverged at step 4"):
        trainer.train(progress=False)
    assert json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["__dict__"][0] == ["step", 2]


def test_sampling_restores_parameter_flags_after_training_steps(tmp_path: Path) -> None:
    trainer = EBMTrainer(make_pipeline(), Digits(), tmp_path, config(2))
    trainer.train(progress=False)
    assert all(p.requires_grad for p in trainer.model.parameters())


def test_trained_tiny_model_scores_noise_worse_than_data(tmp_path: Path) -> None:
    """After a short contrastive-divergence run, uniform noise has higher energy than the training images.

    (Flipped and shrunk digits are checked on the bundled MNIST model in test_pretrained.py.)
    """
    data = Digits(n=64)
    pipe = make_pipeline(langevin_steps=10)
    trainer = EBMTrainer(
        pipe,
        data,
        tmp_path,
        config(30, batch_size=16, langevin_steps=10, log_every=10, checkpoint_every=30, learning_rate=1e-3),
    )
    trainer.train(progress=False)
    real = (data.images + 1) / 2
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(0))
    assert float(pipe.energy(real).mean()) < float(pipe.energy(noise).mean())


def test_cli_trains_an_ebm_on_an_image_folder_and_resumes(tmp_path: Path) -> None:
    from PIL import Image

    from thermogen.cli import main

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(16):
        Image.new("L", (8, 8), i * 16).save(folder / f"{i}.png")
    out = tmp_path / "run"
    common = [
        "train",
        "ebm",
        "--dataset",
        "folder",
        "--data-dir",
        str(folder),
        "--image-size",
        "8",
        "--channels",
        "1",
        "--batch-size",
        "4",
        "--langevin-steps",
        "2",
        "--out",
        str(out),
        "--log-every",
        "1",
        "--sample-every",
        "100",
        "--checkpoint-every",
        "1",
        "--no-progress",
    ]
    assert main([*common, "--epochs", "0.5"]) == 0
    assert main([*common, "--epochs", "1", "--resume"]) == 0
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    loaded = Pipeline.from_pretrained(out / "checkpoint" / "pipeline")
    assert (
        isinstance(loaded, EBMPipeline) and loaded.sample_shape() == (1, 8, 8) and len(loaded.buffer) == 4 + 4 * 4
    )  # book: starts with one batch of noise, then one batch per step


# ---- any sample shape: the energy model states it ---------------------------------------------------


def gaussian_2d_pipeline(**kwargs: object) -> EBMPipeline:
    """N((0.2, -0.4), 0.25² I) in model space: samples (x + 1) / 2 have mean (0.6, 0.3) and std 0.125."""
    energy = GaussianMixtureEnergy(GaussianMixture([[0.2, -0.4]], [0.25]))
    return EBMPipeline(energy, MALASampler(num_steps=200, step_size=0.02), **kwargs)  # type: ignore[arg-type]


def test_a_2d_energy_gives_tensors_of_its_sample_shape_from_the_target() -> None:
    pipe = gaussian_2d_pipeline()
    out = pipe(batch_size=4000, generator=torch.Generator().manual_seed(0), output_type="tensor", progress=False)
    assert pipe.sample_shape() == (2,) and out.images.shape == (4000, 2)
    # standard errors of 4000 exact draws: 0.002 (mean), 0.0014 (std)
    torch.testing.assert_close(out.images.mean(0), torch.tensor([0.6, 0.3]), rtol=0, atol=0.01)
    torch.testing.assert_close(out.images.std(0), torch.tensor([0.125, 0.125]), rtol=0, atol=0.008)
    start = torch.full((3, 2), 0.5)
    assert pipe(initial_state=start, num_inference_steps=1, output_type="tensor", progress=False).images.shape == (3, 2)
    assert pipe.energy(start).shape == (3,)


@pytest.mark.parametrize("output_type", ["pil", "np", "numpy"])
def test_images_from_a_non_image_energy_are_refused_naming_the_shape(output_type: str) -> None:
    with pytest.raises(ValueError, match=rf"output_type='{output_type}' makes images \(C, H, W\), .* shape \(2,\)"):
        gaussian_2d_pipeline()(batch_size=2, output_type=output_type, progress=False)  # type: ignore[arg-type]


def test_starting_points_and_buffers_of_another_shape_are_named() -> None:
    with pytest.raises(ValueError, match=r"initial_state has shape \(3, 4\); expected \(B, 2\)"):
        gaussian_2d_pipeline()(initial_state=torch.zeros(3, 4), output_type="tensor")
    with pytest.raises(ConfigError, match=r"buffer holds samples of shape \(1, 32, 32\), .* are \(2,\)"):
        gaussian_2d_pipeline(buffer=ReplayBuffer(capacity=4))


def test_a_mixture_energy_can_see_its_values_as_an_image() -> None:
    mixture = GaussianMixture(torch.zeros(1, 16), [0.5])
    energy = GaussianMixtureEnergy(mixture, sample_shape=(1, 4, 4))
    assert energy.sample_shape == (1, 4, 4) and GaussianMixtureEnergy(mixture).sample_shape == (16,)
    assert GaussianMixtureEnergy.from_config(energy.to_config()).sample_shape == (1, 4, 4)
    with pytest.raises(ConfigError, match=r"sample_shape=\(3, 4\) holds 12 values; the mixture has D = 16"):
        GaussianMixtureEnergy(mixture, sample_shape=(3, 4))


# ---- the calling convention of every pipeline -----------------------------------------------------


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"steps": 3}, "got steps=3; the keyword is now num_inference_steps: pass num_inference_steps=..."),
        ({"init": "buffer"}, "got init='buffer'; the keyword is now initial_state: pass initial_state=..."),
        ({"num_step": 3}, "got an unexpected keyword argument 'num_step'"),
    ],
)
def test_keywords_before_1_0_name_the_new_ones(keywords: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make_pipeline()(output_type="tensor", progress=False, **keywords)


def test_generation_steps_is_read_as_num_inference_steps_and_never_saved(tmp_path: Path) -> None:
    model, sampler = EnergyCNN(1, 8, widths=(4,), hidden=4), SGLDSampler()
    EBMPipeline(model, sampler, num_inference_steps=7).save_pretrained(tmp_path / "pipe")
    index_file = tmp_path / "pipe" / "model_index.json"
    index = json.loads(index_file.read_text())
    index["generation_steps"] = index.pop("num_inference_steps")  # what thermogen 0.1 wrote
    index_file.write_text(json.dumps(index))
    pipe = EBMPipeline.from_pretrained(tmp_path / "pipe")
    assert pipe.num_inference_steps == 7 and pipe.config == {"num_inference_steps": 7}
    pipe.save_pretrained(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "model_index.json").read_text())
    assert again["num_inference_steps"] == 7 and "generation_steps" not in again
