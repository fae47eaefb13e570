"""Habits users bring from diffusers work (or are refused clearly), and the CLI rejects bad flags argparse-style."""

from __future__ import annotations

import builtins
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from thermogen.cli import main
from thermogen.errors import ConfigError
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.pipelines import DiffusionPipeline, EBMPipeline, Pipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.schedules.cosine import OffsetCosineSchedule


def tiny_pipeline() -> DiffusionPipeline:
    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    return DiffusionPipeline(model, OffsetCosineSchedule(), DDIMSampler(eta=1.0))


def seed(value: int) -> torch.Generator:
    return torch.Generator().manual_seed(value)


def test_pipelines_import_from_the_package() -> None:
    import thermogen.pipelines as pipelines

    assert pipelines.DiffusionPipeline is DiffusionPipeline and pipelines.EBMPipeline is EBMPipeline


def test_from_pretrained_documents_overrides_dtype_and_device() -> None:
    doc = Pipeline.from_pretrained.__doc__ or ""
    for word in ("torch_dtype", "device", 'sampler="dpmpp_2m"', "_class_name", "HF_ENDPOINT", "energy_model"):
        assert word in doc


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_torch_dtype_at_load_and_positional_to(tmp_path: Path, dtype: torch.dtype) -> None:
    tiny_pipeline().save_pretrained(tmp_path)
    pipe = Pipeline.from_pretrained(tmp_path, torch_dtype=dtype, device="cpu")
    assert pipe.dtype == dtype and pipe.model.stem.weight.dtype == dtype
    images = pipe(batch_size=2, num_inference_steps=2, output_type="pt", progress=False).images
    assert images.dtype == dtype and images.shape == (2, 1, 8, 8)
    assert Pipeline.from_pretrained(tmp_path).to(dtype).dtype == dtype


def test_weights_stored_in_half_precision_load_as_float32(tmp_path: Path) -> None:
    """A pipeline saved after ``.to(torch.float16)`` (half the file) loads in float32 unless asked otherwise,
    holding exactly the float16-rounded weights; ``torch_dtype`` still picks the dtype."""
    pipe = tiny_pipeline()
    rounded = {k: v.to(torch.float16).float() for k, v in pipe.model.state_dict().items()}
    pipe.to(torch.float16).save_pretrained(tmp_path)
    loaded = Pipeline.from_pretrained(tmp_path)
    assert loaded.dtype == torch.float32
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, rounded[key]), key
    assert Pipeline.from_pretrained(tmp_path, torch_dtype=torch.float16).dtype == torch.float16


def test_variant_and_bad_dtypes_are_refused(tmp_path: Path) -> None:
    tiny_pipeline().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="variant='fp16' is not supported.*torch_dtype=torch.float16"):
        Pipeline.from_pretrained(tmp_path, variant="fp16")
    with pytest.raises(TypeError, match="expected a floating-point torch.dtype"):
        tiny_pipeline().to(torch.int8)


def test_cuda_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="device='cuda', but CUDA is not available"):
        tiny_pipeline().to("cuda")


def test_np_and_pt_output_type_aliases() -> None:
    pipe = tiny_pipeline()
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    as_pt = pipe(initial_state=noise, num_inference_steps=3, output_type="pt", progress=False, generator=seed(2)).images
    as_np = pipe(initial_state=noise, num_inference_steps=3, output_type="np", progress=False, generator=seed(2)).images
    assert isinstance(as_np, np.ndarray) and as_np.shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(as_np, as_pt.permute(0, 2, 3, 1).numpy())
    with pytest.raises(ValueError, match="output_type='latent'; expected 'pil', 'numpy' \\(or 'np'\\)"):
        pipe(initial_state=noise, num_inference_steps=3, output_type="latent", progress=False)  # type: ignore[arg-type]


def tiny_ebm() -> EBMPipeline:
    torch.manual_seed(0)
    return EBMPipeline(EnergyCNN(1, 8, widths=(4,), hidden=4), SGLDSampler(), num_inference_steps=3)


def test_diffusion_outputs_index_as_in_diffusers() -> None:
    pipe = tiny_pipeline()

    def call(**kwargs: Any) -> Any:
        return pipe(batch_size=2, num_inference_steps=3, generator=seed(5), output_type="pt", progress=False, **kwargs)

    out = call()
    assert torch.equal(out[0], out.images) and torch.equal(out["images"], out.images)
    assert out.to_tuple() == (out.images,) and len(out[:]) == 1  # the trajectory is None: left out, as in diffusers
    as_tuple = call(return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1
    torch.testing.assert_close(as_tuple[0], out.images, rtol=0, atol=0)
    images, trajectory = call(return_dict=False, return_trajectory=True)
    torch.testing.assert_close(images, out.images, rtol=0, atol=0)
    assert trajectory.shape == (4, 2, 1, 8, 8)
    with pytest.raises(KeyError, match=r"'trajectory'; this output has \['images'\]"):
        out["trajectory"]
    pil = pipe(batch_size=2, num_inference_steps=2, progress=False)[0]
    assert isinstance(pil, list) and isinstance(pil[0], Image.Image)


def test_ebm_outputs_index_as_in_diffusers() -> None:
    pipe = tiny_ebm()
    out = pipe(batch_size=2, generator=seed(3), output_type="pt", snapshot_steps=[0, 2], progress=False)
    assert torch.equal(out[0], out.images)
    assert out.to_tuple() == (out.images, out.snapshots, [0, 2])  # acceptance_rate is None for SGLD
    images, snapshots, steps = pipe(
        batch_size=2, generator=seed(3), output_type="pt", snapshot_steps=[0, 2], progress=False, return_dict=False
    )
    torch.testing.assert_close(images, out.images, rtol=0, atol=0)
    torch.testing.assert_close(snapshots, out.snapshots, rtol=0, atol=0)
    assert steps == [0, 2]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_pt_images_come_in_the_pipeline_dtype(dtype: torch.dtype) -> None:
    ebm = tiny_ebm()
    reference = ebm(batch_size=2, generator=seed(4), output_type="pt", progress=False).images
    half = ebm.to(dtype)(batch_size=2, generator=seed(4), output_type="pt", progress=False).images
    assert reference.dtype == torch.float32 and half.dtype == dtype
    torch.testing.assert_close(half.float(), reference, rtol=0, atol=0.05)  # 3 Langevin steps in half precision
    assert ebm(batch_size=2, generator=seed(4), output_type="np", progress=False).images.dtype == np.float32
    diffusion = tiny_pipeline().to(dtype)
    assert diffusion(batch_size=2, num_inference_steps=2, output_type="pt", progress=False).images.dtype == dtype


def test_a_list_of_generators_makes_each_image_depend_on_its_own() -> None:
    pipe = tiny_pipeline()  # eta = 1: every step draws noise, so the sampler's draws are tested too

    def run(seeds: list[int]) -> torch.Tensor:
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        return pipe(
            batch_size=len(seeds), num_inference_steps=3, generator=generators, output_type="pt", progress=False
        ).images

    pair = run([1, 2])
    torch.testing.assert_close(pair[0], run([1])[0], rtol=0, atol=1e-5)  # BatchNorm is in eval mode
    torch.testing.assert_close(pair[1], run([2])[0], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="1 generators for batch_size=2; expected one per sample"):
        pipe(batch_size=2, num_inference_steps=2, generator=[torch.Generator()], progress=False)


def test_model_card_follows_a_component_swap(tmp_path: Path) -> None:
    pipe = tiny_pipeline()
    pipe.model_card = None
    pipe.save_pretrained(tmp_path / "a")
    card = (tmp_path / "a" / "README.md").read_text()
    (tmp_path / "a" / "README.md").write_text(card + "\nhand-written notes\n")
    kept = Pipeline.from_pretrained(tmp_path / "a")
    kept.save_pretrained(tmp_path / "b")
    assert "hand-written notes" in (tmp_path / "b" / "README.md").read_text()  # unchanged components: card kept
    with pytest.warns(UserWarning, match="dropped eta=1.0"):  # tiny_pipeline's DDIM is stochastic
        swapped = Pipeline.from_pretrained(tmp_path / "a", sampler="dpmpp_2m")
    swapped.save_pretrained(tmp_path / "c")
    new_card = (tmp_path / "c" / "README.md").read_text()
    assert "| sampler | `dpmpp_2m` |" in new_card and "`ddim`" not in new_card
    kept.sampler = DDIMSampler(eta=0.3)  # a change after loading also regenerates it
    kept.save_pretrained(tmp_path / "d")
    assert "hand-written notes" not in (tmp_path / "d" / "README.md").read_text()
    kept.model_card = "a card written by code for the changed pipeline\n"  # set by code: always written
    kept.save_pretrained(tmp_path / "e")
    assert (tmp_path / "e" / "README.md").read_text() == "a card written by code for the changed pipeline\n"


# ---------------------------------------------------------------------------
# CLI


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "--steps", "0"], "argument --steps: 0 is not a positive integer"),
        (["sample", "--n", "-3"], "argument --n: -3 is not a positive integer"),
        (["sample", "--out", "grid.gif"], "argument --out: 'grid.gif' has extension '.gif'; expected .png, .jpg"),
        (["evaluate", "x", "--batch-size", "0"], "argument --batch-size: 0 is not a positive integer"),
    ],
)
def test_cli_rejects_bad_values_argparse_style(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_device_without_cuda_is_a_usage_error(capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(SystemExit):
        main(["sample", "--device", "cuda"])
    err = capsys.readouterr().err
    assert "usage:" in err and "argument --device: device='cuda', but CUDA is not available" in err


def test_cli_plot_without_matplotlib_names_the_install(monkeypatch, capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(SystemExit):
        main(["schedules", "--plot", "rates.png"])
    err = capsys.readouterr().err
    assert "argument --plot: plotting needs matplotlib; install it with pip install" in err and "[plot]" in err
    assert builtins is not None


def test_cli_writes_jpeg_when_asked(tmp_path: Path, capsys) -> None:
    tiny_pipeline().save_pretrained(tmp_path / "pipe")
    out = tmp_path / "grid.jpg"
    assert main(["sample", str(tmp_path / "pipe"), "--n", "2", "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    with Image.open(out) as image:
        assert image.format == "JPEG"


def test_sampling_commands_apply_threads(tmp_path: Path, monkeypatch) -> None:
    import torch

    asked: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", asked.append)
    tiny_pipeline().save_pretrained(tmp_path / "pipe")
    common = ["--steps", "1", "--no-progress", "--threads", "1"]
    assert main(["sample", str(tmp_path / "pipe"), "--n", "2", "--out", str(tmp_path / "a.png"), *common]) == 0
    assert main(["steps-sweep", str(tmp_path / "pipe"), "--n", "1", "--out", str(tmp_path / "b.png"), *common[2:]]) == 0
    assert asked == [1, 1]


def test_cli_help_texts_show_defaults(capsys) -> None:
    for command in ("sample", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "torch device: cpu, cuda, cuda:1, mps (default: cpu)" in text
        assert "random seed (default: 0)" in text


RUNS_NO_MODEL = {"list", "schedules", "check", "average-weights"}  # check: the kit runs small models on the CPU
NO_PROGRESS_BAR = {"recalibrate-bn"}  # one forward pass per batch, no bar to hide


def test_every_subcommand_has_device_no_progress_and_help_with_defaults(capsys) -> None:
    from thermogen.cli import build_parser
    from thermogen.cli.arguments import subcommands

    commands = dict(subcommands(build_parser()))
    assert set(commands) >= {
        "train diffusion", "train ebm", "sample", "evaluate", "interpolate", "steps-sweep", "langevin-strip",
        "recalibrate-bn", "schedules", "list",
    }  # fmt: skip
    for name, parser in commands.items():
        options = {o: a for a in parser._actions for o in a.option_strings if o != "-h"}
        if name not in RUNS_NO_MODEL:
            assert "--device" in options, name
            assert "--threads" in options, name  # the way out of spinning waits on a busy machine
            if name not in NO_PROGRESS_BAR:
                assert "--no-progress" in options, name
        with pytest.raises(SystemExit):
            main([*name.split(), "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for action in parser._actions:
            if action.option_strings == ["-h", "--help"]:
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
            if action.default not in (None, False) and action.option_strings:
                shown = action.default if isinstance(action.default, str) else str(action.default)
                assert f"(default: {shown})" in text, f"{name} {action.option_strings}: default not shown"


@pytest.mark.parametrize("command", ["interpolate", "steps-sweep", "langevin-strip", "sample"])
def test_figure_commands_check_the_out_extension(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--out", "figure.gif"])
    assert exit_.value.code == 2
    assert "argument --out: 'figure.gif' has extension '.gif'; expected .png, .jpg or .jpeg" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["steps-sweep", "--steps", "1,0,20"], "argument --steps: 0 is not a positive integer"),
        (["langevin-strip", "--snapshots", "0,-1"], "argument --snapshots: -1 is not a step index >= 0"),
        (["interpolate", "--num", "0"], "argument --num: 0 is not a positive integer"),
        (["train", "diffusion", "--out", "x", "--steps", "0"], "argument --steps: 0 is not a positive integer"),
    ],
)
def test_figure_and_train_counts_are_checked(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_figures_run_with_device_and_no_progress(tmp_path: Path, capsys) -> None:
    tiny_pipeline().save_pretrained(tmp_path / "pipe")
    tiny_ebm().save_pretrained(tmp_path / "ebm")
    common = ["--device", "cpu", "--no-progress"]
    pipe, ebm = str(tmp_path / "pipe"), str(tmp_path / "ebm")
    out = tmp_path / "f.jpg"
    assert main(["interpolate", pipe, "--rows", "1", "--num", "3", "--steps", "1", "--out", str(out), *common]) == 0
    with Image.open(out) as image:
        assert image.format == "JPEG" and image.size == (2 * (3 * 10 + 2), 2 * (1 * 10 + 2))
    assert main(["steps-sweep", pipe, "--steps", "1,2", "--n", "2", "--out", str(tmp_path / "s.png"), *common]) == 0
    strip = ["langevin-strip", ebm, "--n", "2", "--steps", "3", "--snapshots", "0,2"]
    assert main([*strip, "--out", str(tmp_path / "l.png"), *common]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("wrote") == 3 and captured.err == ""  # no progress bars
