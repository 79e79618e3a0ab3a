"""The README's Quick start, typed as shown on a fresh clone: a working key and a 201."""

import os
import re
import signal
import subprocess
import time

from tests.harness import ROOT, free_port


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
    script += '\necho "KEY=$KEY"\necho "QUICK START DONE"\n'
    # a user's shell: no virtualenv, no database of the suite's, not inside a make
    skip = ("VIRTUAL_ENV", "DATABASE_URL", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        shell = subprocess.Popen(
            ["bash", "-c", script],
            cwd=clone,
            env={**env, "PORT": str(port)},
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: `make run &` goes with it
        )
    try:
        deadline = time.monotonic() + 300
        while "QUICK START DONE" not in out_path.read_text():
            assert shell.poll() is None or "QUICK START DONE" in out_path.read_text()
            assert time.monotonic() < deadline, err_path.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(timeout=60)
    printed = out_path.read_text()
    assert re.search(r"^KEY=gf_[A-Za-z0-9_-]{43}$", printed, re.MULTILINE), (
        printed + err_path.read_text()[-3000:]
    )
    assert '"message":"Counter metric recorded"' in printed, printed
