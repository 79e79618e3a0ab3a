"""The README's Quick start, typed as shown on a fresh clone: a working key and a 201."""

import os
import re
import signal
import subprocess

from scripts.harness import ROOT, free_port


def quick_start_block():
    """The README's Quick start commands, as written."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


def test_the_quick_start_works_on_a_fresh_clone_pasted_at_once(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = free_port()  # the block names localhost:8000; this run uses a free port instead
    script = quick_start_block().replace("localhost:8000", f"localhost:{port}")
    script += '\necho "KEY=$KEY"\n'
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
    shell = subprocess.Popen(
        ["bash", "-c", script],
        cwd=clone,
        env={**env, "PORT": str(port), "MAKEFLAGS": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: `make run &` goes with it
    )
    try:
        out, err = shell.communicate(timeout=300)
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
    assert re.search(r"^KEY=gf_[A-Za-z0-9_-]{43}$", out, re.MULTILINE), err[-3000:]
    assert '"message":"Counter metric recorded"' in out.replace(" ", ""), out + err[-3000:]
