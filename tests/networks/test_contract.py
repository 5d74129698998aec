"""The contract every registered SR network keeps, parameterised over the registry.

Each network of :func:`mrsr.networks.specs` (the built-ins, a new built-in, or one a user registers)
is built by name from its ``small`` preset at every case ``(scale, channels)``: the scales of
:data:`CANDIDATE_SCALES` its constructor accepts, times :data:`CHANNELS`. Test IDs read
``[msrn-x2-c3]``. The checks themselves are the functions of ``conftest.py`` (fixture ``sr_checks``).

What differs between networks is data keyed by the spec name, below: parameters set away from
their initial value so every path of the forward runs (:data:`LIVE_PARAMETERS`), and the steps,
bounds and slow cases of the overfit checks (:data:`LOSS_FALLS`, :data:`BEATS_CUBIC`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from mrsr.networks import NetworkSpec, get_network, get_network_class, presets, specs
from mrsr.transforms.resample import upsample_aligned

CANDIDATE_SCALES = (2, 3, 4, 8)
CHANNELS = (1, 3)  # 2D, and 2.5D with one neighbour each side
OTHER_SIZES = ((16, 16), (1, 1), (3, 5))  # LR sizes besides the checks' 13 x 17
SIZE_KEYS = {"scale", "in_channels", "out_channels", "spatial_dims"}  # never in a preset

pytestmark = pytest.mark.usefixtures("one_thread")

#: parameters set to a value before the forward checks (not before the overfit), so every path of the
#: forward runs: WASA's self-attention gate starts at 0 (as in SAGAN), which leaves the attention out
LIVE_PARAMETERS: dict[str, dict[str, float]] = {"wasa": {"attention.gamma": 0.5}}


@dataclass(frozen=True)
class Fit:
    """An overfit check: ``steps`` Adam steps (lr 2e-3) on a real slice, then the best L1 of the last three
    must end below ``bound`` times the reference; ``slow``: all cases, or the ``(scale, channels)`` cases,
    that run only with ``-m slow``."""

    steps: int
    bound: float
    slow: bool | tuple[tuple[int, int], ...] = False


#: the L1 loss falls below ``bound`` times its first value (by default: halves in 40 steps); ICONet starts
#: near the interpolation (a cascade of aligned x2 upsamplings) and needs 120-250 steps to halve
LOSS_FALLS: dict[str, tuple[Fit, ...]] = {
    "wasa": (Fit(60, 0.5, slow=((3, 3), (4, 3))),),
    "iconet": (Fit(80, 1.0, slow=((4, 3), (8, 1), (8, 3))), Fit(300, 0.5, slow=True)),
}
DEFAULT_LOSS_FALLS = (Fit(40, 0.5),)

#: the L1 loss ends below ``bound`` times the aligned cubic interpolation's (by default: after 200 steps, slow)
BEATS_CUBIC: dict[str, tuple[Fit, ...]] = {
    "casnet": (Fit(100, 1.0, slow=True),),
    "wasa": (Fit(60, 1.0, slow=((3, 3), (4, 3))),),
    "iconet": (Fit(80, 0.95, slow=((4, 3), (8, 1), (8, 3))),),
}
DEFAULT_BEATS_CUBIC = (Fit(200, 1.0, slow=True),)


def accepts_scale(spec: NetworkSpec, scale: int) -> bool:
    """False only if the constructor rejects ``scale`` with a ValueError that names it (built on the meta
    device); a network that fails otherwise keeps the case, so its tests show the error."""
    try:
        with torch.device("meta"):
            get_network(spec.name, preset="small", scale=scale)
    except ValueError as err:
        return "scale" not in str(err)
    except Exception:  # not a rejected scale: the case's tests fail with this error
        return True
    return True


def scales(spec: NetworkSpec) -> tuple[int, ...]:
    """The scales of :data:`CANDIDATE_SCALES` the network accepts (the first if it accepts none: its tests fail)."""
    return tuple(s for s in CANDIDATE_SCALES if accepts_scale(spec, s)) or CANDIDATE_SCALES[:1]


SPECS = specs()
SCALES = {spec.name: scales(spec) for spec in SPECS}
CASES = [
    pytest.param(spec.name, s, c, id=f"{spec.name}-x{s}-c{c}")
    for spec in SPECS
    for s in SCALES[spec.name]
    for c in CHANNELS
]
NAMES = [spec.name for spec in SPECS]
ALL_NAMES = [spec.name for spec in specs(include_auxiliary=True)]  # and the discriminator: presets only
#: one case per network for the single-case checks: its middle scale, 2.5D input
MIDDLE = {name: (SCALES[name][len(SCALES[name]) // 2], 3) for name in NAMES}
MIDDLE_CASES = [pytest.param(n, *MIDDLE[n], id=f"{n}-x{MIDDLE[n][0]}-c3") for n in NAMES]
SIZE_CASES = [
    pytest.param(n, *MIDDLE[n], size, id=f"{n}-x{MIDDLE[n][0]}-c3-{size[0]}x{size[1]}")
    for n in NAMES
    for size in OTHER_SIZES
]


def fit_cases(table: dict[str, tuple[Fit, ...]], default: tuple[Fit, ...]) -> list[Any]:
    """The overfit cases ``(name, scale, channels, fit)``, IDs ``msrn-x2-c1-40steps``, slow where the fit says."""
    cases = []
    for name in NAMES:
        for fit in table.get(name, default):
            for s in SCALES[name]:
                for c in CHANNELS:
                    slow = fit.slow is True or (s, c) in (fit.slow or ())
                    marks = [pytest.mark.slow] if slow else []
                    cases.append(pytest.param(name, s, c, fit, id=f"{name}-x{s}-c{c}-{fit.steps}steps", marks=marks))
    return cases


def build(name: str, scale: int, channels: int, *, live: bool = True, **kwargs: Any) -> nn.Module:
    """The network's small preset at ``(scale, channels)``; ``live``: with its :data:`LIVE_PARAMETERS` set."""
    net = get_network(name, preset="small", scale=scale, in_channels=channels, **kwargs)
    with torch.no_grad():
        for param, value in LIVE_PARAMETERS.get(name, {}).items() if live else ():
            net.get_parameter(param).fill_(value)
    return net


def cubic_l1(lr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """L1 of the aligned cubic interpolation of the LR's centre channel against the HR."""
    centre = lr.shape[1] // 2
    return float((upsample_aligned(lr[:, centre : centre + 1], scale) - hr).abs().mean())


Overfit = Callable[[str, int, int, int], tuple[float, float, float]]


@pytest.fixture(scope="session")
def overfit(sr_checks: SimpleNamespace, real_slice_pair: Callable) -> Overfit:
    """``overfit(name, scale, channels, steps)`` -> (first L1, best of the last three, cubic L1) on the real
    slice with ``channels // 2`` neighbours; cached, so the falls and beats-cubic checks of a fit share a run."""

    @functools.cache
    def run(name: str, scale: int, channels: int, steps: int) -> tuple[float, float, float]:
        lr, hr = real_slice_pair(scale, k=channels // 2)
        torch.manual_seed(0)
        first, last = sr_checks.check_overfit(build(name, scale, channels, live=False), lr, hr, steps=steps)
        return first, last, cubic_l1(lr, hr, scale)

    return run


# --- the registry's conventions, per network ---


@pytest.mark.parametrize("name", ALL_NAMES)
def test_presets_include_default_and_small(name: str) -> None:
    assert {"default", "small"} <= set(presets(name))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_presets_hold_size_parameters_only(name: str) -> None:
    """No preset sets scale, channels or spatial_dims: the caller's keyword arguments complete a preset."""
    offending = {preset: SIZE_KEYS & set(kwargs) for preset, kwargs in presets(name).items()}
    assert not any(offending.values()), offending


@pytest.mark.parametrize("name", ALL_NAMES)
def test_default_preset_is_the_constructor_default(name: str) -> None:
    """``PRESETS["default"]`` repeats the constructor's defaults: its values, and the network they build."""
    signature = inspect.signature(get_network_class(name))
    default = presets(name)["default"]
    assert {key: signature.parameters[key].default for key in default} == default
    with torch.device("meta"):
        a, b = get_network(name), get_network(name, preset="default")
    assert [(n, p.shape) for n, p in a.named_parameters()] == [(n, p.shape) for n, p in b.named_parameters()]


@pytest.mark.parametrize("name", NAMES)
def test_rejects_3d(name: str) -> None:
    with pytest.raises(ValueError, match="spatial_dims"):
        get_network(name, preset="small", spatial_dims=3)


# --- the forward, at every case ---


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_output_shape(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    """LR (2, C, 13, 17) -> SR (2, 1, 13 s, 17 s), float32, finite."""
    sr_checks.check_output_shape(build(name, scale, channels), channels, 1, scale)


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_out_channels(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    sr_checks.check_output_shape(build(name, scale, channels, out_channels=2), channels, 2, scale, size=(8, 9))


@pytest.mark.parametrize("name,scale,channels,size", SIZE_CASES)
def test_output_shape_other_sizes(
    sr_checks: SimpleNamespace, name: str, scale: int, channels: int, size: tuple[int, int]
) -> None:
    """Any LR size, down to 1 x 1."""
    sr_checks.check_output_shape(build(name, scale, channels), channels, 1, scale, size=size)


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_gradients_reach_every_parameter(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    sr_checks.check_gradients(build(name, scale, channels), channels)


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_eval_determinism(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    sr_checks.check_eval_determinism(build(name, scale, channels), channels)


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_torchscript(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    sr_checks.check_torchscript(build(name, scale, channels), channels)


@pytest.mark.parametrize("name,scale,channels", MIDDLE_CASES)
def test_torch_export(name: str, scale: int, channels: int) -> None:
    """torch.export (TorchScript's successor since torch 2.10 deprecated it) gives the eager output."""
    net = build(name, scale, channels).eval()
    x = torch.rand(1, channels, 13, 17)
    exported = torch.export.export(net, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), net(x))


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_state_dict_round_trip(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    sr_checks.check_state_dict_round_trip(lambda: build(name, scale, channels), channels)


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_bf16_autocast(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    sr_checks.check_bf16_autocast(build(name, scale, channels), channels, 1, scale)


@pytest.mark.parametrize("name,scale,channels", CASES)
def test_channels_last(sr_checks: SimpleNamespace, name: str, scale: int, channels: int) -> None:
    sr_checks.check_channels_last(build(name, scale, channels), channels)


# --- training on a real slice ---


@pytest.mark.parametrize("name,scale,channels,fit", fit_cases(LOSS_FALLS, DEFAULT_LOSS_FALLS))
def test_overfit_loss_falls(overfit: Overfit, name: str, scale: int, channels: int, fit: Fit) -> None:
    """Overfitting one real k-space-truncated T1 slice (2D, or 2.5D with its neighbours) lowers the L1 loss."""
    first, last, _ = overfit(name, scale, channels, fit.steps)
    assert last < fit.bound * first, f"L1 {first:.4f} -> {last:.4f} in {fit.steps} steps"


@pytest.mark.parametrize("name,scale,channels,fit", fit_cases(BEATS_CUBIC, DEFAULT_BEATS_CUBIC))
def test_overfit_beats_cubic(overfit: Overfit, name: str, scale: int, channels: int, fit: Fit) -> None:
    """Overfitting one real slice ends below the aligned cubic interpolation's L1."""
    _, last, cubic = overfit(name, scale, channels, fit.steps)
    assert last < fit.bound * cubic, f"network L1 {last:.4f} vs cubic {cubic:.4f} after {fit.steps} steps"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_default_preset_trains_one_step(sr_checks: SimpleNamespace, name: str) -> None:
    """The paper-size network does one training step (forward, backward, Adam) on a 24 x 20 2.5D slice at x2."""
    scale, channels = SCALES[name][0], 3  # x2 for every built-in
    sr_checks.check_default_preset_step(
        get_network(name, preset="default", scale=scale, in_channels=channels), channels, scale
    )
