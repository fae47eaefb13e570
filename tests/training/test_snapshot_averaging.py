"""Snapshots of a run (``snapshot_every``) and their weight average (``thermogen average-weights``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from image_sets import Images

from thermogen.buffers import ReplayBuffer
from thermogen.cli import main
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.averaging import average_pipelines, average_state_dicts
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig
from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig
from thermogen.training.loop import LoopConfig

IMAGES = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def ebm_pipeline(seed: int) -> EBMPipeline:
    model = EnergyCNN(1, 8, widths=(4, 8), hidden=8)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return EBMPipeline(model, SGLDSampler(num_steps=2), ReplayBuffer(capacity=16, sample_shape=(1, 8, 8)))


def snapshotting_ebm_trainer(out: Path, steps: int) -> EBMTrainer:
    """A tiny EBM run that checkpoints and snapshots every 2 steps."""
    config = EBMTrainingConfig(
        steps=steps, batch_size=8, langevin_steps=2, log_every=1, checkpoint_every=2, snapshot_every=2,
        sample_every=100, sample_images=2, sample_chain_steps=1,
    )  # fmt: skip
    return EBMTrainer(ebm_pipeline(0), Images(IMAGES * 2 - 1), out, config)


def test_the_average_of_states_is_their_mean_tensor_by_tensor_and_integers_come_from_the_last() -> None:
    states = [
        {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([0.5], dtype=torch.float16), "n": torch.tensor(3)},
        {"w": torch.tensor([3.0, -2.0]), "h": torch.tensor([1.5], dtype=torch.float16), "n": torch.tensor(7)},
        {"w": torch.tensor([5.0, 3.0]), "h": torch.tensor([2.5], dtype=torch.float16), "n": torch.tensor(11)},
    ]
    mean = average_state_dicts(states)
    assert torch.equal(mean["w"], torch.tensor([3.0, 1.0]))
    assert mean["h"].dtype == torch.float16 and torch.equal(mean["h"], torch.tensor([1.5], dtype=torch.float16))
    assert int(mean["n"]) == 11
    assert torch.equal(average_state_dicts(states[:1])["w"], states[0]["w"])  # one state: itself


@pytest.mark.parametrize(
    ("second", "named"),
    [
        ({"w": torch.zeros(3)}, "w is (3,)"),
        ({"w": torch.zeros(2, dtype=torch.float64)}, "torch.float64"),
        ({"v": torch.zeros(2)}, "missing ['w'], extra ['v']"),
    ],
)
def test_states_that_do_not_match_are_refused_naming_the_state_and_the_tensor(
    second: dict[str, torch.Tensor], named: str
) -> None:
    with pytest.raises(ValueError, match="state 1") as error:
        average_state_dicts([{"w": torch.zeros(2)}, second])
    assert named in str(error.value)
    with pytest.raises(ValueError, match="no states"):
        average_state_dicts([])


def test_average_pipelines_averages_the_network_keeps_the_last_buffer_and_changes_no_input() -> None:
    first, last = ebm_pipeline(0), ebm_pipeline(1)
    last.buffer.push(torch.full((4, 1, 8, 8), 0.25))
    last.model_card = "# the card of the last snapshot alone"
    before = [p.energy_model.state_dict()["convs.0.weight"].clone() for p in (first, last)]  # type: ignore[union-attr]
    averaged = average_pipelines([first, last])
    for name, tensor in averaged.energy_model.state_dict().items():
        expected = (first.energy_model.state_dict()[name].double() + last.energy_model.state_dict()[name].double()) / 2
        assert torch.allclose(tensor.double(), expected, atol=1e-7), name
    assert torch.equal(averaged.buffer.state_tensors()["samples"], last.buffer.state_tensors()["samples"])
    assert averaged.buffer is not last.buffer
    assert "the last snapshot alone" not in averaged.current_model_card()
    assert torch.equal(first.energy_model.state_dict()["convs.0.weight"], before[0])
    assert torch.equal(last.energy_model.state_dict()["convs.0.weight"], before[1])


def test_pipelines_of_different_kinds_or_shapes_are_refused() -> None:
    diffusion = DiffusionPipeline(UNet(1, 8, widths=(4, 8), block_depth=1), OffsetCosineSchedule(), DDIMSampler())
    with pytest.raises(ValueError, match="pipeline 0 is DiffusionPipeline, the last one EBMPipeline"):
        average_pipelines([diffusion, ebm_pipeline(0)])
    buffer = ReplayBuffer(capacity=16, sample_shape=(1, 8, 8))
    wider = EBMPipeline(EnergyCNN(1, 8, widths=(4, 16), hidden=8), SGLDSampler(), buffer)
    with pytest.raises(ValueError, match="energy_model: state 1"):
        average_pipelines([ebm_pipeline(0), wider])
    with pytest.raises(ValueError, match="no pipelines"):
        average_pipelines([])


def test_snapshot_every_must_be_off_or_a_multiple_of_checkpoint_every() -> None:
    assert LoopConfig(checkpoint_every=2, snapshot_every=6).snapshot_every == 6
    for bad in (3, -2, True, 2.0):
        with pytest.raises(ValueError, match=f"snapshot_every={bad!r}.*checkpoint_every=2"):
            LoopConfig(checkpoint_every=2, snapshot_every=bad)  # type: ignore[arg-type]


def test_an_ebm_run_keeps_its_snapshots_and_average_weights_writes_their_mean(tmp_path: Path) -> None:
    trainer = snapshotting_ebm_trainer(tmp_path / "run", steps=4)
    trainer.train(progress=False)
    snapshots = sorted((tmp_path / "run" / "snapshots").iterdir())
    assert [s.name for s in snapshots] == ["step_000002", "step_000004"]
    loaded = [Pipeline.from_pretrained(s) for s in snapshots]
    final = trainer.model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in loaded[1].energy_model.state_dict().items())
    assert not torch.equal(final["convs.0.weight"], loaded[0].energy_model.state_dict()["convs.0.weight"])

    assert main(["average-weights", *map(str, snapshots), "--out", str(tmp_path / "mean")]) == 0
    mean = Pipeline.from_pretrained(tmp_path / "mean")
    for name, tensor in mean.energy_model.state_dict().items():
        pair = [p.energy_model.state_dict()[name].double() for p in loaded]
        assert torch.allclose(tensor.double(), (pair[0] + pair[1]) / 2, atol=1e-7), name
    assert torch.equal(mean.buffer.state_tensors()["samples"], loaded[1].buffer.state_tensors()["samples"])


def test_a_snapshot_cut_off_by_a_stop_is_written_when_the_run_resumes(tmp_path: Path) -> None:
    snapshotting_ebm_trainer(tmp_path / "run", steps=2).train(progress=False)
    snapshot = tmp_path / "run" / "snapshots" / "step_000002"
    expected = Pipeline.from_pretrained(snapshot).energy_model.state_dict()
    shutil.rmtree(snapshot)  # as if the process had stopped between the checkpoint and its snapshot
    resumed = snapshotting_ebm_trainer(tmp_path / "run", steps=4)
    resumed.load_checkpoint()
    resumed.train(progress=False)
    restored = Pipeline.from_pretrained(snapshot).energy_model.state_dict()
    assert all(torch.equal(expected[k], v) for k, v in restored.items())
    assert (tmp_path / "run" / "snapshots" / "step_000004").is_dir()


def test_a_diffusion_run_snapshots_its_ema_pipeline(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pipeline = DiffusionPipeline(
        UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4), OffsetCosineSchedule(), DDIMSampler(), Normalizer()
    )
    config = DiffusionTrainingConfig(
        steps=6, batch_size=8, log_every=1, checkpoint_every=3, snapshot_every=6, sample_every=100, sample_images=2,
        sample_steps=1,
    )  # fmt: skip
    trainer = DiffusionTrainer(pipeline, Images(IMAGES), tmp_path / "run", config)
    trainer.train(progress=False)
    assert [s.name for s in (tmp_path / "run" / "snapshots").iterdir()] == ["step_000006"]
    saved = Pipeline.from_pretrained(tmp_path / "run" / "snapshots" / "step_000006")
    ema = trainer.ema.model.state_dict()
    assert all(torch.equal(ema[k], v) for k, v in saved.model.state_dict().items())
