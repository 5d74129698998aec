"""Run handlers: the image panel and atomic checkpoints."""

from __future__ import annotations

import torch

from mrsr.engines.handlers import atomic_save, panel_image


def test_panel_is_lr_sr_hr_error_side_by_side():
    lr, sr, hr = torch.full((4, 5), 0.5), torch.full((8, 10), 0.4), torch.full((8, 10), 0.6)
    panel = panel_image(lr, sr, hr, error_gain=2.0)
    assert panel.shape == (1, 8, 40)
    torch.testing.assert_close(panel[0, :, :10], torch.full((8, 10), 0.5))
    torch.testing.assert_close(panel[0, :, 30:], torch.full((8, 10), 0.4))  # |0.4 - 0.6| x 2
    assert float(panel.max()) <= 1 and float(panel.min()) >= 0


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    atomic_save({"a": torch.ones(2)}, tmp_path / "c.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert torch.equal(torch.load(tmp_path / "c.pt", weights_only=True)["a"], torch.ones(2))
