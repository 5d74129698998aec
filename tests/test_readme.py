"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np

from mrsr.data import load_volume, sample_path, save_volume
from mrsr.transforms import KSpaceTruncate

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if marker in b)


def test_bundle_network_in_a_users_own_monai_pipeline(tmp_path, monkeypatch):
    hr = load_volume(sample_path())
    lr = KSpaceTruncate(2, axes=(0, 1))(hr)
    save_volume(lr, tmp_path / "lr.nii.gz")
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_block("VolumeInferer"), "README.md", "exec"), {})
    out = nib.load(tmp_path / "sr" / "lr_sr.nii.gz")
    assert out.shape == tuple(hr.shape[1:])
    np.testing.assert_allclose(out.affine, hr.affine.numpy(), atol=1e-4)
    sr = np.asarray(out.dataobj)
    assert abs(np.percentile(sr, 99) - float(np.percentile(lr.numpy(), 99))) < 0.05 * float(lr.max())
