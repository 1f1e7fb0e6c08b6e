"""The run-directory lock: a second run refuses naming the holder; a killed holder's lock is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kerasmer.core import lock as lockmod
from kerasmer.core.lock import LOCK_NAME, RunLock, RunLockedError

# The holder runs lock.py on its own (core imports nothing of kerasmer), so it starts in well under a second.
_HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("lock", sys.argv[1]); m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
with m.RunLock(sys.argv[2], log=lambda s: None):
    print("held", flush=True)
    time.sleep(600)
"""


def _start_holder(run_dir):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, lockmod.__file__, str(run_dir)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_refuses_naming_the_holder_then_takes_over_after_sigkill(tmp_path):
    proc = _start_holder(tmp_path)
    try:
        with pytest.raises(RunLockedError) as err:
            with RunLock(tmp_path):
                pass
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and f"host {socket.gethostname()}" in msg and "since 20" in msg
        assert str(tmp_path / LOCK_NAME) in msg
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    logs = []
    with RunLock(tmp_path, log=logs.append):
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid()
    assert len(logs) == 1 and "stale lock" in logs[0] and f"pid {proc.pid}" in logs[0]
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released normally: no record, so no takeover message next
    logs.clear()
    with RunLock(tmp_path, log=logs.append):
        pass
    assert logs == []


def test_same_process_second_lock_refuses(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).__enter__()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_fallback_without_fcntl(tmp_path, monkeypatch):
    monkeypatch.setattr(lockmod, "fcntl", None)
    path = Path(tmp_path) / LOCK_NAME
    live = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
    path.write_text(json.dumps(live))
    with pytest.raises(RunLockedError, match=f"pid {os.getppid()} on host .* since 2026-01-01"):
        RunLock(tmp_path).__enter__()
    path.write_text(json.dumps(dict(live, pid=_dead_pid())))
    logs = []
    with RunLock(tmp_path, log=logs.append):
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "stale lock" in logs[0]
    assert not path.exists()  # the fallback's release removes the file
