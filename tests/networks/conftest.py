"""Shared fixtures of the network tests.

- ``real_slice_pair``: factory of a real LR/HR pair from the bundled T1 head MRI, degraded by k-space
  truncation (the project's degradation), for the short overfit tests of every network;
- ``sr_checks``: the checks every SR network passes (shapes, gradients, determinism, TorchScript,
  state_dict, bf16 autocast, channels_last, overfit, a paper-size training step), as a namespace of
  functions: ``test_contract.py`` runs them on every registered network;
- ``one_thread``: run a test on one intra-op thread.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from mrsr.data import sample_path
from mrsr.transforms.kspace import fourier_resize

SLICE_INDEX = 31  # axial slice near the middle of the 62
CROP_ORIGIN = (28, 24)  # top-left corner of the HR crop in the 128x128 slice: brain fills it
CROP_SIZE = 64


@functools.lru_cache(maxsize=1)
def _volume() -> np.ndarray:
    """The sample volume (128, 128, 62) as float32 in [0, 1]: divided by its 99.5th percentile, clipped."""
    import nibabel as nib

    vol = np.asarray(nib.load(str(sample_path())).dataobj, dtype=np.float32)
    return np.clip(vol / np.percentile(vol, 99.5), 0.0, 1.0)


def make_real_slice_pair(scale: int, k: int = 0, size: int = CROP_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """A real (LR, HR) pair from the bundled T1 head MRI.

    HR: a ``scale * (size // scale)`` square crop (64x64 for x2 and x4, 63x63 for x3) of axial slice 31,
    brain inside. LR: its k-space truncation to ``size // scale`` per axis
    (:func:`mrsr.transforms.kspace.fourier_resize`, then the magnitude).

    Args:
        scale: SR factor s.
        k: 2.5D neighbours: the LR gets the 2k+1 slices ``31-k .. 31+k`` as channels (centre = slice
            31); the HR is always the centre slice only.
        size: HR crop size before rounding down to a multiple of ``scale``.

    Returns:
        ``lr`` (1, 2k+1, h, w) and ``hr`` (1, 1, s*h, s*w), float32, in about [0, 1].
    """
    n = size // scale
    hr_size = n * scale
    y0, x0 = CROP_ORIGIN
    vol = _volume()
    stack = vol[y0 : y0 + hr_size, x0 : x0 + hr_size, SLICE_INDEX - k : SLICE_INDEX + k + 1]
    stack = torch.from_numpy(np.ascontiguousarray(stack.transpose(2, 0, 1)))[None]  # (1, 2k+1, H, W)
    lr = fourier_resize(stack, [n, n], [-2, -1]).abs().float().contiguous()
    hr = stack[:, k : k + 1].clone()
    return lr, hr


@pytest.fixture(scope="session")
def real_slice_pair():
    """Factory fixture: ``real_slice_pair(scale, k=0)`` -> ``(lr (1, 2k+1, h, w), hr (1, 1, s*h, s*w))``.

    See :func:`make_real_slice_pair`.
    """
    return make_real_slice_pair


# --- checks shared by the SR network tests (DURN, MSRN, CasNet, WASA, ICONet ...) ---


def check_output_shape(net: torch.nn.Module, in_channels: int, out_channels: int, scale: int, size=(13, 17)) -> None:
    """LR (2, in_channels, h, w) -> SR (2, out_channels, s*h, s*w), finite, in eval mode."""
    net.eval()
    x = torch.rand(2, in_channels, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, out_channels, scale * size[0], scale * size[1])
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def check_gradients(net: torch.nn.Module, in_channels: int, size=(13, 17)) -> None:
    """After one backward of an L1 loss every parameter has a gradient that is not all zero."""
    torch.manual_seed(0)
    net.train()
    x = torch.rand(2, in_channels, *size)
    y = net(x)
    loss = (y - torch.rand_like(y)).abs().mean()
    net.zero_grad(set_to_none=True)
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    zero = [n for n, p in net.named_parameters() if p.grad is not None and not bool(p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient: {missing}"
    assert not zero, f"all-zero gradient: {zero}"


def check_eval_determinism(net: torch.nn.Module, in_channels: int, size=(13, 17)) -> None:
    """Two eval-mode forwards of the same input are identical."""
    net.eval()
    x = torch.rand(1, in_channels, *size)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


def check_torchscript(net: torch.nn.Module, in_channels: int, size=(13, 17), trace: bool = False) -> None:
    """Scripted (or traced) export, saved and loaded again, gives the eager output."""
    import io
    import warnings

    net.eval()
    x = torch.rand(1, in_channels, *size)
    with torch.no_grad(), warnings.catch_warnings():
        # torch >= 2.10 marks TorchScript deprecated; export still has to work for deployment
        warnings.simplefilter("ignore", DeprecationWarning)
        ref = net(x)
        exported = torch.jit.trace(net, x) if trace else torch.jit.script(net)
        buf = io.BytesIO()
        torch.jit.save(exported, buf)
        buf.seek(0)
        loaded = torch.jit.load(buf)
        torch.testing.assert_close(exported(x), ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(loaded(x), ref, rtol=1e-5, atol=1e-6)


def check_state_dict_round_trip(make, in_channels: int, size=(13, 17)) -> None:
    """``make()`` twice (different random init), load one's state into the other: same outputs."""
    torch.manual_seed(1)
    a = make().eval()
    torch.manual_seed(2)
    b = make().eval()
    x = torch.rand(1, in_channels, *size)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
        b.load_state_dict(a.state_dict())
        assert torch.equal(a(x), b(x))


def check_bf16_autocast(net: torch.nn.Module, in_channels: int, out_channels: int, scale: int, size=(13, 17)) -> None:
    """Under CPU bf16 autocast the forward runs, is finite and stays near the fp32 output."""
    net.eval()
    x = torch.rand(2, in_channels, *size)
    with torch.no_grad():
        ref = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = net(x)
    assert y.shape == (2, out_channels, scale * size[0], scale * size[1])
    assert torch.isfinite(y).all()
    err = (y.float() - ref).abs().mean()
    assert err <= 0.05 * ref.abs().mean() + 1e-2, f"bf16 deviates from fp32 by {float(err):.4g} on average"


def check_channels_last(net: torch.nn.Module, in_channels: int, size=(13, 17)) -> None:
    """A channels_last model and input give the contiguous output."""
    net.eval()
    x = torch.rand(2, in_channels, *size)
    with torch.no_grad():
        ref = net(x)
        net = net.to(memory_format=torch.channels_last)
        y = net(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-5)


def check_overfit(net: torch.nn.Module, lr_img: torch.Tensor, hr_img: torch.Tensor, steps: int = 40, lr: float = 2e-3):
    """``steps`` Adam steps on one real pair; returns the L1 loss: (first, best of the last three)."""
    torch.manual_seed(0)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = (net(lr_img) - hr_img).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses[0], min(losses[-3:])


def check_default_preset_step(net: torch.nn.Module, in_channels: int, scale: int, size=(24, 20)) -> None:
    """The paper-size network does one training step (forward, backward, Adam) on a small slice."""
    net.train()
    x = torch.rand(1, in_channels, *size)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    y = net(x)
    assert y.shape == (1, 1, scale * size[0], scale * size[1])
    loss = (y - torch.rand_like(y)).abs().mean()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: these workloads are tiny, and on a loaded 2-core machine OpenMP
    oversubscription slows them down 10-100x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def sr_checks():
    """The shared checks of SR networks, as a namespace: ``sr_checks.check_gradients(net, 1)`` ..."""
    import types

    return types.SimpleNamespace(
        check_output_shape=check_output_shape,
        check_gradients=check_gradients,
        check_eval_determinism=check_eval_determinism,
        check_torchscript=check_torchscript,
        check_state_dict_round_trip=check_state_dict_round_trip,
        check_bf16_autocast=check_bf16_autocast,
        check_channels_last=check_channels_last,
        check_overfit=check_overfit,
        check_default_preset_step=check_default_preset_step,
    )
