"""One wrk run against a loopback URL with scripts/wrk/ingest.lua: throughput, latency
percentiles, responses by status, and the CPU wrk itself used (so a reader can see that the
load generator was not the bottleneck)."""

import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "ingest.lua"
MARKER = "WRK_JSON "
WRK_THREADS = 2
# A batch of 1,000 points can take a while under load; wrk's 2 s default would count it lost.
REQUEST_TIMEOUT = "30s"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class WrkResult:
    """The figures of one run; latencies in milliseconds."""

    connections: int
    requests: int
    seconds: float
    statuses: dict
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float
    wall_seconds: float

    @property
    def rate(self):
        """2xx responses per second (errors are counted apart, never as throughput)."""
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300) / self.seconds

    @property
    def cpu_share(self):
        """wrk's CPU time as a share of one core over its run."""
        return self.cpu_seconds / self.wall_seconds

    def as_dict(self):
        """The raw figures, for --json."""
        return {**asdict(self), "rate": self.rate, "cpu_share_of_one_core": self.cpu_share}


def run_wrk(url, bodies_path, api_key, connections, seconds, bearer=False):
    """Drive ``url`` for ``seconds`` with ``connections`` keep-alive connections; the key (or
    token) goes in X-API-Key, or with ``bearer`` in ``Authorization: Bearer``."""
    command = [
        "wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds}s",
        f"--timeout={REQUEST_TIMEOUT}", "-s", str(LUA_SCRIPT), url,
        "--", str(bodies_path), api_key, *(["bearer"] if bearer else []),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as output:
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            cpu_seconds = _cpu_seconds_at_exit(process, timeout=seconds + 60)
        except BaseException:  # Ctrl-C, SIGTERM: no load left running behind us
            process.kill()
            process.wait()
            raise
        wall_seconds = time.perf_counter() - began
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}: {text.strip()}")
    return _parse(text, connections, cpu_seconds, wall_seconds)


def _cpu_seconds_at_exit(process, timeout):
    """Wait for ``process`` to exit, read its user+system time from /proc while it is still
    a zombie (the entry goes once reaped), then reap it."""
    deadline = time.monotonic() + timeout
    while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"wrk did not finish within {timeout} s")
        time.sleep(0.05)
    cpu_seconds = proc_cpu_seconds(process.pid)
    process.wait()
    return cpu_seconds


def proc_cpu_seconds(pid):
    """utime + stime of a process, all its threads included, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def _parse(text, connections, cpu_seconds, wall_seconds):
    line = next((ln for ln in text.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {MARKER.strip()} line: {text.strip()}")
    raw = json.loads(line[len(MARKER) :])
    latency = raw["latency_us"]
    return WrkResult(
        connections=connections,
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        statuses={int(code): count for code, count in raw["statuses"].items()},
        non_2xx=raw["non_2xx"],
        socket_errors=sum(raw["socket_errors"].values()),
        p50_ms=latency["p50"] / 1000,
        p95_ms=latency["p95"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        cpu_seconds=cpu_seconds,
        wall_seconds=wall_seconds,
    )
