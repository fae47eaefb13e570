"""Compact replay-buffer storage (float16, uint8): bit-exact save/load, float32 draws."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thermogen.buffers import ReplayBuffer
from thermogen.errors import CheckpointError, ConfigError
from thermogen.weights import load_tensors, save_tensors


@pytest.mark.parametrize("storage", ["float16", "uint8"])
def test_compact_buffer_round_trips_bit_for_bit_and_samples_float32(storage: str, tmp_path: Path) -> None:
    buffer = ReplayBuffer(capacity=6, reinit_prob=0.0, sample_shape=(1, 3, 3), storage=storage)  # type: ignore[arg-type]
    values = torch.linspace(-1.2, 1.2, 4 * 9).reshape(4, 1, 3, 3)
    buffer.push(values)
    stored = buffer.stored_samples()
    if storage == "uint8":  # the 8-bit grid q / 127.5 - 1, clipped to [-1, 1]
        expected = torch.round((values.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1
        assert buffer.storage.element_size() == 1
    else:
        expected = values.half().float()
    torch.testing.assert_close(stored, expected, rtol=0, atol=0)
    save_tensors(buffer.state_tensors(), tmp_path / "buffer.safetensors")
    loaded = ReplayBuffer.from_config(buffer.to_config())
    loaded.load_state_tensors(load_tensors(tmp_path / "buffer.safetensors"))
    assert torch.equal(loaded.storage, buffer.storage) and loaded.storage.dtype == buffer.storage.dtype
    x, indices = loaded.sample(5, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, expected[indices], rtol=0, atol=0)


def test_a_uint8_buffer_refuses_float_state() -> None:
    buffer = ReplayBuffer(capacity=2, sample_shape=(1,), storage="uint8")
    state = {"samples": torch.zeros(1, 1), "count": torch.tensor(1), "pointer": torch.tensor(1)}
    with pytest.raises(CheckpointError, match="dtype torch.float32 do not fit a buffer that stores torch.uint8"):
        buffer.load_state_tensors(state)
    with pytest.raises(ConfigError, match="storage='int4'"):
        ReplayBuffer(storage="int4")  # type: ignore[arg-type]
