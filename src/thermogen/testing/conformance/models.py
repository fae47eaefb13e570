"""Conformance checks for models (:class:`thermogen.NoisePredictor`, :class:`thermogen.EnergyModel`, other networks).

The sample-shape contract: an energy model states the shape of one sample in its
``sample_shape`` property (any shape: (C, H, W) images, (D,) vectors); a noise predictor says
its images' shape with ``in_channels`` and ``image_size`` attributes (pipelines draw noise of
shape (B, in_channels, image_size, image_size)); other models are fed (B, 1, 32, 32).
A model class may state small constructor arguments as ``conformance = {"config": {...}}``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from thermogen.interfaces import EnergyModel, NoisePredictor
from thermogen.testing.conformance.components import rebuilt_from_config, resolve
from thermogen.testing.conformance.report import CheckResult, passed, require


def _model(model: Any) -> nn.Module:
    return resolve(model, "models").eval()


def sample_shape(model: nn.Module) -> tuple[int, ...]:
    """Shape of one input: an energy model's ``sample_shape``, else (C, H, W) from ``in_channels`` and
    ``image_size`` (default 1 and 32)."""
    if isinstance(model, EnergyModel):
        return tuple(int(n) for n in model.sample_shape)
    size = int(getattr(model, "image_size", 32))
    return int(getattr(model, "in_channels", 1)), size, size


def _inputs(model: nn.Module, batch: int = 3) -> Tensor:
    return torch.randn(batch, *sample_shape(model), generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def _outputs(model: nn.Module, x: Tensor) -> Tensor:
    if isinstance(model, NoisePredictor):
        return model(x, torch.tensor([0.1, 0.5, 0.9][: x.shape[0]] * (x.shape[0] // 3 + 1))[: x.shape[0]])
    return model(x)


def check_output_shapes(model: Any) -> CheckResult:
    """A noise predictor returns its input's shape and dtype; an energy model returns (B,) energies and a score
    of the input's shape; any model returns finite values for a batch of its sample shape."""
    m = _model(model)
    x = _inputs(m)
    out = _outputs(m, x)
    if isinstance(m, NoisePredictor):
        require(
            out.shape == x.shape and out.dtype == x.dtype,
            "output_shapes",
            f"forward(x {tuple(x.shape)}, noise_level (3,))",
            f"{tuple(out.shape)} {out.dtype}",
        )
    elif isinstance(m, EnergyModel):
        require(out.shape == (x.shape[0],), "output_shapes", f"energy of x {tuple(x.shape)}", f"{tuple(out.shape)}")
        score = m.score(x)
        require(score.shape == x.shape, "output_shapes", f"score of x {tuple(x.shape)}", f"{tuple(score.shape)}")
    require(bool(torch.isfinite(out).all()), "output_shapes", f"forward on {tuple(x.shape)}", "non-finite outputs")
    return passed("output_shapes", f"{tuple(x.shape)} -> {tuple(out.shape)}")


def check_sample_shape_contract(model: Any) -> CheckResult:
    """Energy models state ``sample_shape`` (a tuple of positive integers), noise predictors ``in_channels`` and
    ``image_size`` (positive integers), and both accept a batch of one and of five at that shape."""
    m = _model(model)
    if isinstance(m, EnergyModel):
        shape = m.sample_shape
        require(
            isinstance(shape, tuple) and bool(shape) and all(isinstance(n, int) and n > 0 for n in shape),
            "sample_shape_contract",
            f"{type(m).__name__}.sample_shape must be a tuple of positive ints (pipelines draw samples of that shape)",
            repr(shape),
        )
    if isinstance(m, NoisePredictor):
        for name in ("in_channels", "image_size"):
            value = getattr(m, name, None)
            require(
                isinstance(value, int) and value > 0,
                "sample_shape_contract",
                f"{type(m).__name__}.{name} must be a positive int (pipelines draw noise of that shape)",
                repr(value),
            )
    for batch in (1, 5):
        x = torch.randn(batch, *sample_shape(m), generator=torch.Generator().manual_seed(batch))
        out = _outputs(m, x)
        require(out.shape[0] == batch, "sample_shape_contract", f"batch of {batch}", f"{tuple(out.shape)}")
    return passed("sample_shape_contract", f"sample shape {sample_shape(m)}")


def check_config_round_trip(model: Any) -> CheckResult:
    """``from_config(json(to_config()))`` is the same class with the same config and parameter shapes."""
    m = _model(model)
    config, again = rebuilt_from_config(m, "models")
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    require(
        {k: tuple(v.shape) for k, v in again.state_dict().items()} == shapes,
        "config_round_trip",
        "rebuilt model's tensors",
        "different names or shapes",
    )
    return passed("config_round_trip", f"{config['_class_name']}, {len(shapes)} tensors")


def check_safetensors_round_trip(model: Any) -> CheckResult:
    """``save_pretrained`` writes config.json (+ model.safetensors, nothing pickled); ``from_pretrained`` gives
    equal tensors and equal outputs."""
    m = _model(model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        m.save_pretrained(folder)  # type: ignore[operator]
        files = sorted(p.name for p in folder.iterdir())
        loaded = type(m).from_pretrained(folder).eval()  # type: ignore[attr-defined]
    pickled = [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    require(not pickled, "safetensors_round_trip", "save_pretrained writes safetensors only", str(files))
    state, again = m.state_dict(), loaded.state_dict()
    different = [k for k in state if k not in again or not torch.equal(state[k], again[k])]
    require(
        not different and set(state) == set(again),
        "safetensors_round_trip",
        "tensors after a round trip",
        f"differ: {different[:3]}, missing/extra: {sorted(set(state) ^ set(again))[:3]}",
    )
    x = _inputs(m)
    require(
        torch.equal(_outputs(m, x), _outputs(loaded, x)),
        "safetensors_round_trip",
        "outputs after a round trip",
        "differ",
    )
    return passed("safetensors_round_trip", ", ".join(files))


CHECKS = (check_output_shapes, check_sample_shape_contract, check_config_round_trip, check_safetensors_round_trip)
"""Every model check, in the order :func:`~thermogen.testing.conformance.run_checks` runs them."""
