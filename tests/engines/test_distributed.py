"""DDP: two CPU processes with gloo under torchrun train exactly as one process with twice the batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from mrsr.engines import train
from mrsr.engines.distributed import DistContext, all_reduce_mean, check_in_sync, setup_distributed


def test_single_process_context(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = setup_distributed("cpu")
    assert ctx == DistContext(0, 1, torch.device("cpu")) and ctx.is_main and not ctx.distributed
    t = torch.tensor([2.0])
    assert torch.equal(all_reduce_mean(t), t)
    check_in_sync(torch.nn.Linear(2, 2))  # a no-op alone


def test_two_gloo_ranks_match_one_process(make_config, tmp_path):
    ddp_config = make_config(tmp_path / "ddp", batch_size=2, samples_per_epoch=16, epochs=2)
    # `python -m torch.distributed.run` is what the torchrun command runs
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "mrsr", "train",
        "--network", "msrn", "--preset", "small", "--network-kwargs", json.dumps(ddp_config.network_kwargs),
        "--manifest", ddp_config.manifest, "--out", ddp_config.out, "--patch-size", "12", "--batch-size", "2",
        "--samples-per-epoch", "16", "--epochs", "2", "--lr", "1e-3", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x 2 ranks" in proc.stdout
    ddp = json.loads((tmp_path / "ddp" / "history.json").read_text())

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun rank: same float reduction order
    try:
        single = train(make_config(tmp_path / "one", batch_size=4, samples_per_epoch=16, epochs=2))
    finally:
        torch.set_num_threads(threads)
    assert len(ddp["loss"]) == len(single["loss"]) == 8
    torch.testing.assert_close(torch.tensor(ddp["loss"]), torch.tensor(single["loss"]), rtol=1e-4, atol=1e-6)
    for a, b in zip(ddp["epochs"], single["epochs"]):
        assert a["val_psnr"] == pytest.approx(b["val_psnr"], abs=1e-3)
    wa = torch.load(tmp_path / "ddp" / "model_last.pt", weights_only=True)["state_dict"]
    wb = torch.load(tmp_path / "one" / "model_last.pt", weights_only=True)["state_dict"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-6)
