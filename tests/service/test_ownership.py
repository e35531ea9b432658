"""One writer per checkpoint path: a second process is refused on one line; a restart after SIGKILL is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from activestream.checkpoint import remove_stale_temps, temp_path_for
from activestream.ownership import CheckpointInUse, CheckpointLock

REPO = Path(__file__).resolve().parents[2]

_HOLD = """
import sys, time
from activestream.ownership import CheckpointLock
CheckpointLock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "service")}


def _holder(checkpoint: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(checkpoint)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_process_is_refused_until_the_holder_dies_however_it_dies(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state.ckpt"
    holder = _holder(checkpoint)
    try:
        with pytest.raises(
            CheckpointInUse, match=rf"in use by another activestream process \(host .* pid {holder.pid}\)"
        ):
            CheckpointLock.acquire(checkpoint)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    lock = CheckpointLock.acquire(checkpoint)  # the kernel released the dead holder's lock
    lock.release()


def test_the_lock_is_shared_within_a_process_and_released_by_its_last_holder(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state.ckpt"
    first, second = CheckpointLock.acquire(checkpoint), CheckpointLock.acquire(checkpoint)
    first.release()
    first.release()  # idempotent
    probe = subprocess.run(
        [sys.executable, "-c", _HOLD.replace("time.sleep(600)", ""), str(checkpoint)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert probe.returncode != 0 and "CheckpointInUse" in probe.stderr  # still held by `second`
    second.release()
    probe = subprocess.run(
        [sys.executable, "-c", _HOLD.replace("time.sleep(600)", ""), str(checkpoint)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr


def test_activestream_run_refuses_a_checkpoint_in_use_on_one_line(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state.ckpt"
    holder = _holder(checkpoint)
    try:
        env = {
            **_env(),
            "ACTIVESTREAM_CHECKPOINT_PATH": str(checkpoint),
            # Nothing listens here: the checkpoint is checked before the broker.
            "ACTIVESTREAM_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        }
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "activestream.cli", "run"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "in use by another activestream process" in lines[0] and "ACTIVESTREAM_CHECKPOINT_PATH" in lines[0]
    assert time.monotonic() - started < 60


def test_temp_files_are_unique_per_write_and_stale_ones_are_removed(tmp_path: Path) -> None:
    checkpoint = tmp_path / "state.ckpt"
    first, second = temp_path_for(checkpoint), temp_path_for(checkpoint)
    assert first != second and first.parent == checkpoint.parent
    journal_temp = temp_path_for(checkpoint.with_name("state.ckpt.journal"))
    other = tmp_path / ".other.ckpt.1-ab.tmp"
    for path in (first, journal_temp, other, checkpoint):
        path.write_bytes(b"x")
    assert remove_stale_temps(checkpoint) == sorted([first, journal_temp])
    assert checkpoint.exists() and other.exists() and not first.exists() and not journal_temp.exists()
