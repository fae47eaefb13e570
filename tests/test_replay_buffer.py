"""The replay buffer: 5 % re-initialisation, uniform draws with replacement, first-in-first-out, book init,
save / load round trips that resume identically."""

from __future__ import annotations

import pytest
import torch
from statistical_rules import fraction_mismatch, uniform_counts_mismatch

from thermogen import registry
from thermogen.buffers import ReplayBuffer
from thermogen.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see tests/conftest.py


# ----------------------------------------------------------------------------------------
# ReplayBuffer


def filled(capacity: int, n: int, shape: tuple[int, ...] = (1, 2, 2), **kwargs) -> ReplayBuffer:
    """A buffer holding samples whose every value is their push order 0..n-1."""
    buffer = ReplayBuffer(capacity=capacity, sample_shape=shape, **kwargs)
    buffer.push(torch.arange(n, dtype=torch.float32).view(n, *[1] * len(shape)).expand(n, *shape))
    return buffer


def ids(x: torch.Tensor) -> list[int]:
    return [int(v) for v in x.reshape(x.shape[0], -1)[:, 0]]


def test_buffer_reinitialises_about_5_percent_from_fresh_uniform_noise() -> None:
    """Restarts are Binomial(25,600, 0.05); the rule rejects rates of 7 %, 3 %, 6 % and 4 %
    (tests/testing/test_statistical_power.py)."""
    buffer = filled(256, 256, shape=(1, 4, 4))
    g = torch.Generator().manual_seed(0)
    fresh_rows, total = 0, 0
    for _ in range(200):
        x, indices = buffer.sample(128, g)
        restart = indices == -1
        fresh_rows += int(restart.sum())
        total += 128
        # fresh rows are U(-1, 1) noise, the others exactly the stored sample at their index
        assert bool((x[restart].abs() <= 1).all())
        stored = ~restart
        torch.testing.assert_close(x[stored], buffer.storage[indices[stored]], rtol=0, atol=0)
    problem = fraction_mismatch(fresh_rows, total, 0.05)
    assert problem is None, problem


def test_buffer_draws_uniformly_with_replacement() -> None:
    """12,800 draws over 16 slots, after a wrap (slot order is not age order): chi-square of the
    slot counts. The rule rejects draws biased towards recent slots (newest 1.5x as likely as the
    oldest), a slot never drawn and one slot drawn twice as often (tests/testing/test_statistical_power.py)."""
    buffer = filled(16, 16, reinit_prob=0.0)
    buffer.push(torch.arange(16, 24, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 1, 2, 2))
    assert buffer.pointer == 8
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(16)
    for _ in range(200):
        x, indices = buffer.sample(64, g)
        torch.testing.assert_close(x, buffer.storage[indices], rtol=0, atol=0)
        counts += torch.bincount(indices, minlength=16)
    assert counts.sum() == 12800
    problem = uniform_counts_mismatch(counts)
    assert problem is None, problem
    small = filled(4, 4, reinit_prob=0.0)
    assert sorted(set(small.sample(64, g)[1].tolist())) == [0, 1, 2, 3]  # 64 draws from 4 samples: with replacement


def test_buffer_push_overwrites_the_oldest_and_truncates_to_capacity() -> None:
    buffer = filled(5, 3)
    buffer.push(torch.arange(3, 7, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 2, 2))
    assert len(buffer) == 5
    assert sorted(ids(buffer.storage)) == [2, 3, 4, 5, 6]  # 0 and 1, the oldest, were dropped
    buffer.push(torch.arange(10, 17, dtype=torch.float32).view(7, 1, 1, 1).expand(7, 1, 2, 2))
    assert sorted(ids(buffer.storage)) == [10, 11, 12, 13, 14]  # the book keeps a big batch's first rows


def test_buffer_is_first_in_first_out_across_the_wrap() -> None:
    """Pushing one row at a time past capacity drops exactly the oldest row each time."""
    buffer = ReplayBuffer(capacity=3, reinit_prob=0.0, sample_shape=(1, 1, 1))
    for i in range(8):
        buffer.push(torch.full((1, 1, 1, 1), float(i)))
        assert sorted(buffer.storage[: len(buffer)].flatten().tolist()) == list(range(max(0, i - 2), i + 1)), i
        assert buffer.pointer == (i + 1) % 3
    buffer.push(torch.tensor([10.0, 11.0]).view(2, 1, 1, 1))  # a batch across the wrap: rows 2 and 0
    assert buffer.storage.flatten().tolist() == [11.0, 7.0, 10.0] and buffer.pointer == 1


def test_buffer_starts_with_a_batch_of_uniform_images_like_the_book() -> None:
    buffer = ReplayBuffer(capacity=100, reinit_prob=0.0, sample_shape=(1, 8, 8))
    x, indices = buffer.sample(16, torch.Generator().manual_seed(0))
    assert len(buffer) == 16 and x.shape == (16, 1, 8, 8)
    assert bool((x.abs() <= 1).all()) and x.std() > 0.5  # U(-1, 1): std 0.577
    torch.testing.assert_close(x, buffer.storage[indices], rtol=0, atol=0)


def test_buffer_gaussian_init_and_custom_initializer() -> None:
    g = torch.Generator().manual_seed(0)
    gaussian = ReplayBuffer(sample_shape=(1, 32, 32), init="gaussian").fresh(64, g)
    assert gaussian.std().item() == pytest.approx(1.0, abs=0.03) and gaussian.abs().max() > 1
    buffer = ReplayBuffer(capacity=10, reinit_prob=1.0, sample_shape=(2,))
    buffer.set_initializer(lambda n, generator: torch.full((n, 2), 7.0))
    x, indices = buffer.sample(3, g)
    assert torch.equal(x, torch.full((3, 2), 7.0)) and indices.tolist() == [-1, -1, -1]
    buffer.set_initializer(lambda n, generator: torch.zeros(n, 3))
    with pytest.raises(ValueError, match=r"initializer returned shape \(3, 3\); expected \(3, 2\)"):
        buffer.sample(3, g)


def test_buffer_save_load_round_trip_resumes_identically(tmp_path) -> None:
    buffer = ReplayBuffer(capacity=6, reinit_prob=0.3, sample_shape=(1, 2, 2))
    g = torch.Generator().manual_seed(0)
    for _ in range(3):  # wrap the ring: the write pointer is mid-buffer
        x, _ = buffer.sample(4, g)
        buffer.push(x + 0.5)
    assert len(buffer) == 6 and buffer.pointer != 0
    buffer.save_pretrained(tmp_path / "buffer")
    loaded = ReplayBuffer.from_pretrained(tmp_path / "buffer")
    assert loaded.to_config() == buffer.to_config() and loaded.sample_shape == (1, 2, 2)
    assert (loaded.count, loaded.pointer) == (buffer.count, buffer.pointer)
    torch.testing.assert_close(loaded.storage, buffer.storage, rtol=0, atol=0)
    state = torch.get_rng_state()
    a = buffer.sample(5, torch.Generator().manual_seed(3))
    b = loaded.sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never touched


def test_buffer_config_round_trip_and_registry_name() -> None:
    buffer = ReplayBuffer(capacity=10, reinit_prob=0.1, sample_shape=(3, 4, 4), init="gaussian")
    config = buffer.to_config()
    assert config["_class_name"] == "replay_buffer" and config["sample_shape"] == [3, 4, 4]
    assert registry.get("components", "replay_buffer") is ReplayBuffer
    rebuilt = ReplayBuffer.from_config(config)
    assert rebuilt.config == buffer.config and rebuilt.storage.shape == (10, 3, 4, 4)


def test_partly_filled_and_empty_buffers_save_and_load(tmp_path) -> None:
    for n in (0, 3):
        buffer = filled(8, n) if n else ReplayBuffer(capacity=8, sample_shape=(1, 2, 2))
        buffer.save_pretrained(tmp_path / f"b{n}")
        loaded = ReplayBuffer.from_pretrained(tmp_path / f"b{n}")
        assert (loaded.count, loaded.pointer) == (n, n)
        torch.testing.assert_close(loaded.storage[:n], buffer.storage[:n], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 0}, "capacity=0"),
        ({"reinit_prob": 1.5}, "reinit_prob=1.5"),
        ({"sample_shape": ()}, r"sample_shape=\[\]"),
        ({"sample_shape": (1, 0)}, r"sample_shape=\[1, 0\]"),
        ({"init": "sobol"}, "init='sobol'"),
    ],
)
def test_buffer_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReplayBuffer(**kwargs)


def test_buffer_bad_calls_and_bad_state() -> None:
    buffer = filled(4, 2)
    with pytest.raises(ValueError, match=r"pushed samples have shape \(2, 1, 3, 3\); expected \(n, 1, 2, 2\)"):
        buffer.push(torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match="batch_size=0"):
        buffer.sample(0)
    state = buffer.state_tensors()
    with pytest.raises(CheckpointError, match="expected"):
        buffer.load_state_tensors({"samples": state["samples"]})
    with pytest.raises(CheckpointError, match="expected"):
        buffer.load_state_tensors({**state, "samples": torch.zeros(2, 1, 3, 3)})
    with pytest.raises(CheckpointError, match="capacity 4"):
        buffer.load_state_tensors({**state, "pointer": torch.tensor(3)})
    assert buffer.to("cpu") is buffer and buffer.device.type == "cpu"
