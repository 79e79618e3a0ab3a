"""The ingest benchmark's table: per figure the median rate, latency percentiles, the
ceiling it is compared with, the ratio, the issue's target, errors and wrk's CPU share."""

import math
import os
import statistics
from dataclasses import dataclass

CORES = os.cpu_count() or 1
_COLUMNS = (
    f"{'figure':<24}{'median':>17}{'p50':>7}{'p95':>7}{'p99':>7}  {'compared with':<28}"
    f"{'ratio':>6}  {'target':<24}{'errors':>6}  wrk CPU"
)
LEGEND = (
    "p50/p95/p99: latency in ms (medians over the runs); ratio (rounded down): median / the\n"
    "median it is compared with, from the same run; errors: non-2xx answers and socket\n"
    "errors over all runs (for the drain: points answered 202 but never written, and failed\n"
    f"workers); wrk CPU: the load generator's CPU time as a share of one core (and of all {CORES})."
)


@dataclass(frozen=True)
class Target:
    """What the issue asks of a figure: a minimum ratio, and maybe a p99 bound."""

    min_ratio: float
    max_p99_ms: float | None = None

    def text(self):
        """e.g. '>=0.6x p99<=25ms'."""
        bound = f" p99<={self.max_p99_ms:g}ms" if self.max_p99_ms else ""
        return f">={self.min_ratio:g}x{bound}"

    def met(self, ratio, p99_ms):
        """Whether a figure reaches it."""
        return ratio >= self.min_ratio and (self.max_p99_ms is None or p99_ms <= self.max_p99_ms)


@dataclass
class Row:
    """One line of the table."""

    figure: str
    value: float
    unit: str
    latency: tuple | None = None  # (p50, p95, p99) in ms
    ceiling_label: str = ""
    ceiling: float | None = None
    target: Target | None = None
    errors: int | None = None  # None where nothing could fail (the executemany rows)
    cpu_share: float | None = None

    @property
    def ratio(self):
        """value / ceiling, or None without a ceiling."""
        return self.value / self.ceiling if self.ceiling else None

    @property
    def target_met(self):
        """Whether the row reaches its target; None without one."""
        if self.target is None:
            return None
        return self.target.met(self.ratio, self.latency[2] if self.latency else 0.0)

    def as_dict(self):
        """The row's figures, for --json."""
        return {
            "figure": self.figure, "value": self.value, "unit": self.unit,
            "p50_ms": self.latency[0] if self.latency else None,
            "p95_ms": self.latency[1] if self.latency else None,
            "p99_ms": self.latency[2] if self.latency else None,
            "compared_with": self.ceiling_label or None, "ceiling": self.ceiling,
            "ratio": self.ratio, "target": self.target.text() if self.target else None,
            "target_met": self.target_met, "errors": self.errors, "wrk_cpu_share": self.cpu_share,
        }  # fmt: skip


def median_of(runs, attribute):
    """The median of one attribute over repeated runs."""
    return statistics.median(getattr(run, attribute) for run in runs)


def wrk_row(figure, runs, points=1, unit="req/s", **compare):
    """A row for repeated wrk runs: medians of rate (times ``points``) and percentiles."""
    latency = tuple(median_of(runs, f"p{p}_ms") for p in (50, 95, 99))
    return Row(
        figure,
        median_of(runs, "rate") * points,
        unit,
        latency,
        errors=sum(run.non_2xx + run.socket_errors for run in runs),
        cpu_share=median_of(runs, "cpu_share"),
        **compare,
    )


def format_row(row):
    """The row as one line of text."""
    cells = (f"{ms:>7.1f}" if ms < 10_000 else f"{ms:>7.0f}" for ms in row.latency or ())
    latency = "".join(cells) if row.latency else " " * 21
    compared = f"{row.ceiling_label} {row.ceiling:,.0f}" if row.ceiling else ""
    # Rounded down, so a ratio just short of its target never prints as reaching it.
    ratio = f"{math.floor(row.ratio * 100 + 1e-9) / 100:.2f}x" if row.ratio is not None else ""
    target = ""
    if row.target:
        target = f"{row.target.text()} {'met' if row.target_met else 'MISSED'}"
    errors = "" if row.errors is None else str(row.errors)
    cpu = ""
    if row.cpu_share is not None:
        cpu = f"{row.cpu_share:.0%} ({row.cpu_share / CORES:.0%})"
    return (
        f"{row.figure:<24}{row.value:>11,.0f} {row.unit:<5}{latency}  {compared:<28}"
        f"{ratio:>6}  {target:<24}{errors:>6}  {cpu}"
    ).rstrip()


def print_table(title, sections):
    """Print the title, each (heading, rows) section under one column header, the legend."""
    print(f"\n{title}")
    print(_COLUMNS)
    print("-" * len(_COLUMNS))
    for heading, rows in sections:
        print(heading)
        for row in rows:
            print(format_row(row))
    print("-" * len(_COLUMNS))
    print(LEGEND)


def error_lines(figures):
    """One line per figure whose runs had non-2xx answers or socket errors;
    ``figures`` is (label, [WrkResult…]) pairs."""
    lines = []
    for label, runs in figures:
        statuses = {}
        for run in runs:
            for code, count in run.statuses.items():
                if not 200 <= code < 300:
                    statuses[code] = statuses.get(code, 0) + count
        sockets = sum(run.socket_errors for run in runs)
        if statuses or sockets:
            lines.append(f"  {label}: non-2xx {statuses or 'none'}, socket errors {sockets}")
    return lines
