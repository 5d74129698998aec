"""Run handlers: the image panel and atomic checkpoints."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from mrsr.engines.handlers import PanelWriter, atomic_save, panel_image


def test_panel_is_lr_sr_hr_error_side_by_side():
    """Columns of W pixels: LR with each pixel repeated 2 x 2 (nearest, onto the HR grid), the SR and the HR
    images themselves, |SR - HR| x gain; everything clipped to [0, 1]."""
    g = torch.Generator().manual_seed(0)
    lr, sr, hr = torch.rand(4, 5, generator=g), torch.rand(8, 10, generator=g), torch.rand(8, 10, generator=g)
    sr[0, 0], sr[0, 1] = 1.5, -0.2  # outside [0, 1]: clipped in the SR column
    panel = panel_image(lr, sr, hr, error_gain=2.0)
    assert panel.shape == (1, 8, 40)
    torch.testing.assert_close(panel[0, :, :10], lr.repeat_interleave(2, 0).repeat_interleave(2, 1))
    torch.testing.assert_close(panel[0, :, 10:20], sr.clamp(0, 1))
    assert panel[0, 0, 10] == 1.0 and panel[0, 0, 11] == 0.0
    torch.testing.assert_close(panel[0, :, 20:30], hr)
    torch.testing.assert_close(panel[0, :, 30:], ((sr - hr).abs() * 2.0).clamp(0, 1))
    constant = panel_image(torch.full((4, 5), 0.5), torch.full((8, 10), 0.4), torch.full((8, 10), 0.6), 2.0)
    torch.testing.assert_close(constant[0, :, 30:], torch.full((8, 10), 0.4))  # |0.4 - 0.6| x 2


def test_panel_writer_shows_the_middle_slice_of_the_first_volume():
    """PanelWriter logs ``val/panel`` at the trainer's epoch; its SR and HR columns are the middle slice (along
    the slice axis) of the first validation volume's prediction and label, pixel for pixel."""
    g = torch.Generator().manual_seed(1)
    lr = torch.rand(2, 1, 4, 5, 3, generator=g)
    pred, label = torch.rand(2, 1, 8, 10, 3, generator=g), torch.rand(2, 1, 8, 10, 3, generator=g)
    logged = []
    writer = SimpleNamespace(add_image=lambda tag, image, step: logged.append((tag, image, step)))
    engine = SimpleNamespace(state=SimpleNamespace(output={"image": lr, "pred": pred, "label": label}))
    PanelWriter(writer, lambda: 7, slice_axis=2)(engine)
    [(tag, panel, step)] = logged
    assert tag == "val/panel" and step == 7 and panel.shape == (1, 8, 40)
    torch.testing.assert_close(panel[0, :, 10:20], pred[0, 0, :, :, 1])
    torch.testing.assert_close(panel[0, :, 20:30], label[0, 0, :, :, 1])
    torch.testing.assert_close(panel[0, :, :10], lr[0, 0, :, :, 1].repeat_interleave(2, 0).repeat_interleave(2, 1))


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    atomic_save({"a": torch.ones(2)}, tmp_path / "c.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert torch.equal(torch.load(tmp_path / "c.pt", weights_only=True)["a"], torch.ones(2))
