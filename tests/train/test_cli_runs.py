"""``lnc train`` as a user runs it, in subprocesses: 2-process DDP on the CPU, and resuming after SIGKILL."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch


def lnc_train(config: Path, *flags: str, cwd: Path, **popen) -> subprocess.Popen:
    """``lnc train --config CONFIG FLAGS`` in a new process (as the console script runs it), one thread each."""
    command = [sys.executable, "-m", "lnc.tools.cli", "train", "--config", str(config), *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see the one_thread fixture
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_ddp_two_processes_on_cpu(tmp_path, shrunk_config):
    config = shrunk_config(tmp_path, "mbt2018-mean-vr.yaml", checkpoint_every=3)
    flags = ("--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_steps", "3",
             "--trainer.val_check_interval", "3", "--trainer.limit_val_batches", "1")  # fmt: skip
    output = finish(lnc_train(config, *flags, cwd=tmp_path))
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in output
    ckpt = load(tmp_path / "runs" / "mbt2018-mean-vr" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3
    assert all(s["step"] == 3 for s in ckpt["optimizer_states"][0]["state"].values())
    with (tmp_path / "runs" / "mbt2018-mean-vr" / "version_0" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    kodak = [r for r in rows if r.get("kodak/bpp_real_q8")]
    assert len(kodak) == 1  # rank 0 coded the Kodak image at both quality points
    assert float(kodak[0]["kodak/bpp_real_q1"]) > 0 and float(kodak[0]["kodak/psnr_real_q8"]) > 0


def test_resume_after_sigkill_restores_step_and_optimizer(tmp_path, shrunk_config):
    config = shrunk_config(tmp_path, "mbt2018-mean.yaml", checkpoint_every=5)
    checkpoints = tmp_path / "runs" / "mbt2018-mean" / "checkpoints"
    last = checkpoints / "last.ckpt"
    ema = "--trainer.callbacks+=lnc.train.callbacks.EMA"
    process = lnc_train(config, "--trainer.max_steps", "100000", ema, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        killed_at = 0
        while not killed_at:
            assert process.poll() is None and time.monotonic() < deadline, "training ended before it was killed"
            if last.is_file() and load(last)["global_step"] >= 10:
                os.killpg(process.pid, signal.SIGKILL)
                killed_at = load(last)["global_step"]
            time.sleep(0.2)
        process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    before = load(last)
    step = before["global_step"]
    assert step % 5 == 0 and step >= killed_at - 5

    finish(lnc_train(config, "--trainer.max_steps", str(step + 5), "--ckpt_path", "last", ema, cwd=tmp_path))
    after = load(last)
    assert after["global_step"] == step + 5
    # Both Adam optimisers went on counting from the checkpoint (a fresh one would be at 5).
    for i in (0, 1):
        assert {float(s["step"]) for s in after["optimizer_states"][i]["state"].values()} == {step + 5.0}
    assert after["lr_schedulers"][0]["last_epoch"] == step + 5
    # The weight average went on from the checkpoint's (decay 0.999: 5 steps move it by ~0.5%)
    # rather than restarting from the resumed weights.
    name = "g_s.0.weight"
    average, weights = before["callbacks"]["EMA"]["shadow"][name], before["state_dict"][f"codec.{name}"]
    moved = (after["callbacks"]["EMA"]["shadow"][name] - average).norm()
    assert moved < 0.05 * (weights - average).norm()
    with (tmp_path / "runs" / "mbt2018-mean" / "version_1" / "metrics.csv").open() as f:
        logged = sorted(int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss"))
    assert logged == list(range(step, step + 5))
