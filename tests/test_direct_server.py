"""gunicorn served directly, with no nginx in front: oversized bodies, slow clients and worker
recycling, through a real server on a loopback port."""

import os
import subprocess
import sys

from scripts.harness import ROOT


def gunicorn_settings(tmp_path, **env):
    """The settings gunicorn resolves from gunicorn.conf.py under ``env``."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), **env}
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--print-config"]
    printed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    pairs = (line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_workers_are_recycled_only_when_asked(tmp_path):
    settings = gunicorn_settings(tmp_path)
    assert (settings["max_requests"], settings["max_requests_jitter"]) == ("0", "0")
    settings = gunicorn_settings(tmp_path, WORKER_MAX_REQUESTS="5000")
    assert (settings["max_requests"], settings["max_requests_jitter"]) == ("5000", "500")
