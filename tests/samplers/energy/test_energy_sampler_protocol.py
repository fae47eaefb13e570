"""The energy-sampler protocol: a sampler object is configuration, the chain's state is explicit.

Ground truth: each chain run alone (bitwise), the sampler's attributes before and after
sampling, a hand-written loop that re-evaluates the state where a callback moved the
sample, and configs saved before the 1.0 redesign (``steps``, SGLD's ``form``).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch

from thermogen.config import from_config
from thermogen.errors import ConfigError
from thermogen.interfaces import Sampler
from thermogen.samplers import STOP, EnergySampler, HMCSampler, MALASampler, SGLDSampler, ULASampler
from thermogen.testing import GaussianMixture, GaussianMixtureEnergy

MIXTURE = GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], [0.5, 0.7], [0.4, 0.6])
SAMPLERS = {
    "sgld-annealed": lambda: SGLDSampler(step_size=0.1, noise_std=0.3, sample_clip=None, final_noise_scale=0.1),
    "ula-annealed": lambda: ULASampler(step_size=0.05, final_noise_scale=0.2),
    "mala": lambda: MALASampler(step_size=0.3),
    "hmc": lambda: HMCSampler(step_size=0.3, num_leapfrog_steps=4),
}


def energy() -> GaussianMixtureEnergy:
    return GaussianMixtureEnergy(MIXTURE).double()


def start(seed: int, n: int = 12) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_one_sampler_runs_two_interleaved_chains_each_as_if_alone(name: str) -> None:
    model, sampler = energy(), SAMPLERS[name]()
    alone = [
        sampler.sample(model, start(seed), num_steps=15, generator=torch.Generator().manual_seed(seed + 10))
        for seed in (1, 2)
    ]
    chains = [start(1), start(2, n=12)]
    generators = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    with sampler.frozen(model):
        states = [sampler.initial_state(model, x, 15) for x in chains]
        for _ in range(15):
            for k in (0, 1):  # chain 0 steps, then chain 1, on the same sampler object
                out = sampler.step(model, chains[k], states[k], generator=generators[k])
                chains[k], states[k] = out.sample, out.state
    for k in (0, 1):
        assert torch.equal(chains[k], alone[k].sample), f"chain {k} differs from its run alone"


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampling_leaves_the_sampler_object_as_it_was(name: str) -> None:
    sampler = SAMPLERS[name]()
    before = copy.deepcopy(vars(sampler))
    sampler.sample(energy(), start(0), num_steps=5, generator=torch.Generator().manual_seed(0))
    assert vars(sampler) == before


@pytest.mark.parametrize("name", ["mala", "hmc"])
def test_a_sample_replaced_by_a_callback_gets_a_fresh_state(name: str) -> None:
    """The state's E(x) and score describe the tensor it came with; a callback's new tensor is evaluated anew."""
    model, sampler = energy(), SAMPLERS[name]()

    def halve_after_step_3(info):
        return info.sample * 0.5 if info.step == 3 else None

    out = sampler.sample(
        model, start(0), num_steps=8, generator=torch.Generator().manual_seed(4), callback=halve_after_step_3
    )
    x, g = start(0), torch.Generator().manual_seed(4)
    with sampler.frozen(model):
        state = sampler.initial_state(model, x, 8)
        for i in range(8):
            step = sampler.step(model, x, state, generator=g)
            x, state = step.sample, step.state
            if i == 3:
                x = x * 0.5
                state = sampler.initial_state(model, x, 8)  # E and the score at the new point
    assert torch.equal(out.sample, x)


def test_a_callback_that_stops_ends_the_chain_with_the_state_reached() -> None:
    sampler = SAMPLERS["mala"]()
    out = sampler.sample(
        energy(),
        start(0),
        num_steps=20,
        callback=lambda info: STOP if info.step == 4 else None,
        generator=torch.Generator().manual_seed(1),
    )
    again = sampler.sample(energy(), start(0), num_steps=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out.sample, again.sample) and out.acceptance_rate == again.acceptance_rate


@pytest.mark.parametrize(("name", "state"), [("sgld-annealed", None), ("mala", "stale"), ("hmc", 3)])
def test_a_step_without_its_state_names_what_it_needs(name: str, state: object) -> None:
    sampler = SAMPLERS[name]()
    with pytest.raises(TypeError, match=r"\.step got state .*; expected the \w+ that initial_state"):
        sampler.step(energy(), start(0), state)


# ---- configs saved before the 1.0 redesign ------------------------------------------------------------


BOOK_CONFIG = {
    "_class_name": "sgld",
    "_thermogen_version": "0.1.0",
    "final_noise_scale": 1.0,
    "form": "book",
    "grad_clip": 0.03,
    "noise_std": 0.005,
    "sample_clip": [-1.0, 1.0],
    "step_size": 10.0,
    "steps": 60,
    "temperature": 1.0,
}


def thermogen_from_config(config: dict) -> Sampler:
    return from_config(config, kind="samplers")  # type: ignore[no-any-return]


TEXTBOOK_CONFIG = {**BOOK_CONFIG, "form": "textbook", "step_size": 0.05, "temperature": 0.5, "steps": 30}


def test_an_old_book_form_config_loads_as_sgld_without_form() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the config means exactly today's sgld
        for build in (SGLDSampler.from_config, EnergySampler.from_config, Sampler.from_config, thermogen_from_config):
            sampler = build(BOOK_CONFIG)
            assert type(sampler) is SGLDSampler and sampler.config == SGLDSampler().config


def test_an_old_textbook_form_config_loads_as_ula_with_a_warning_naming_the_new_class_name() -> None:
    expected = ULASampler(num_steps=30, step_size=0.05, temperature=0.5)
    for build in (SGLDSampler.from_config, EnergySampler.from_config, lambda c: from_config(c, kind="samplers")):
        with pytest.warns(FutureWarning, match=r'is unadjusted Langevin.* should now read "_class_name": "ula"'):
            sampler = build(TEXTBOOK_CONFIG)
        assert type(sampler) is ULASampler and sampler.config == expected.config


def test_an_old_textbook_chain_is_drawn_again_by_ula() -> None:
    """The old textbook step: x + eta s(x) + sqrt(2 eta T) xi, one randn per step."""
    model = energy()
    x, g = start(3), torch.Generator().manual_seed(5)
    for _ in range(30):
        xi = torch.randn(x.shape, generator=g, dtype=x.dtype)
        x = x + 0.05 * model.energy_and_score(x)[1] + (2 * 0.05 * 0.5) ** 0.5 * xi
    with pytest.warns(FutureWarning):
        sampler = EnergySampler.from_config(TEXTBOOK_CONFIG)
    out = sampler.sample(model, start(3), generator=torch.Generator().manual_seed(5))  # its num_steps: 30
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("cls", "extra"), [(MALASampler, {"temperature": 2.0}), (HMCSampler, {"num_leapfrog_steps": 3})]
)
def test_old_steps_is_read_as_num_steps(cls: type[EnergySampler], extra: dict) -> None:
    name = {MALASampler: "mala", HMCSampler: "hmc"}[cls]
    old = {"_class_name": name, "_thermogen_version": "0.1.0", "steps": 7, "step_size": 0.2, **extra}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = EnergySampler.from_config(old)
    assert type(sampler) is cls and sampler.config == cls(num_steps=7, step_size=0.2, **extra).config


def test_an_old_config_folder_loads_and_a_new_save_writes_the_new_form(tmp_path: Path) -> None:
    folder = tmp_path / "sampler"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TEXTBOOK_CONFIG))
    with pytest.warns(FutureWarning):
        sampler = SGLDSampler.from_pretrained(folder)
    sampler.save_pretrained(tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "config.json").read_text())
    assert saved["_class_name"] == "ula" and "form" not in saved and saved["num_steps"] == 30


def test_an_old_config_with_an_unknown_form_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sgld config has form='euler'; expected 'book' or 'textbook'"):
        SGLDSampler.from_config({**BOOK_CONFIG, "form": "euler"})


def test_current_configs_and_other_samplers_pass_unchanged() -> None:
    config = SGLDSampler(num_steps=5).to_config()
    assert SGLDSampler.from_config(config).config == SGLDSampler(num_steps=5).config
    with pytest.warns(UserWarning, match=r"ignoring unknown keys \['steps'\]"):
        ULASampler.from_config({"_class_name": "ula", "steps": 3})  # no old form of ula exists
