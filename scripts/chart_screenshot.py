"""The README's screenshots of the chart page, made again whenever the page changes: a grouped
chart, and a value metric's p95 beside the day before.

    .venv/bin/python scripts/chart_screenshot.py [--chart grouped|p95] [--out PATH]

Serves the app (gunicorn, ``gunicorn.conf.py``) on a throwaway SQLite database, records six
hours of made-up but repeatable traffic through the API — ``http.requests`` tagged with 14
hosts, a region and a status, ``api.latency_ms`` (many response times in every 5 minutes, the
same hours a day earlier too), and a few other metrics for the list — then opens the page in
headless Chromium (Debian's ``chromium`` and ``chromium-driver``, as ``make test`` installs
them) on the chart asked for, and saves the page as a PNG: ``grouped`` (the default) is
``http.requests`` grouped by host with one filter, in ``docs/chart-page.png``; ``p95`` is the
p95 of ``api.latency_ms`` with the day before dashed, in ``docs/chart-p95.png``.
"""

import argparse
import base64
import json
import math
import os
import random
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import config  # noqa: E402
from app.db import Store  # noqa: E402
from app.db.migrate import migrate  # noqa: E402
from tests.harness import Gunicorn, new_key  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--lang=en-US",
)
WIDTH = 1200
STEP = timedelta(minutes=5)
HOURS = 6
HOSTS = [f"web-{n}" for n in range(1, 15)]
# Each chart: its query, its default file and whether it waits for a filter row's values.
CHARTS = {
    "grouped": (
        "metric=http.requests&window=5m&range=6h&group_by=host&filter=status%21%3D404",
        ROOT / "docs" / "chart-page.png",
        True,
    ),
    "p95": (
        "metric=api.latency_ms&operation=p95&window=5m&range=6h&compare=1d",
        ROOT / "docs" / "chart-p95.png",
        False,
    ),
}
LATENCY_SAMPLES = 120  # response times in each STEP
WAIT_SECONDS = 30
MARGIN_SECONDS = 30  # the page's range starts when it opens, a few seconds after the points
BATCH = 1000


def moments(now):
    """One time in each STEP bucket of the HOURS before ``now`` (the partial first and last
    ones too, so no bucket of the page's range is empty), randomly placed but repeatably."""
    rng = random.Random(HOURS)
    seconds = int(STEP.total_seconds())
    start = now.timestamp() - HOURS * 3600 + MARGIN_SECONDS  # the page asks a moment later
    times = []
    for bucket in range(int(start // seconds), int(now.timestamp() // seconds) + 1):
        low, high = max(bucket * seconds, start), min((bucket + 1) * seconds, now.timestamp())
        if low < high:
            times.append(datetime.fromtimestamp(low + rng.random() * (high - low), UTC))
    return times


def traffic(now):
    """Every point to record: (name, type, value, tags, time), the same on every run but for
    the times."""
    rng = random.Random(20261204)
    times = moments(now)
    points = []
    for index, host in enumerate(HOSTS):
        weight = 1 / (1 + 0.4 * index)  # a few busy hosts and a long tail
        region = "eu" if index % 2 == 0 else "us"
        for step, at in enumerate(times):
            wave = 1 + 0.45 * math.sin((step / len(times)) * 2 * math.pi + index)
            requests = max(1, round(120 * weight * wave * rng.uniform(0.9, 1.1)))
            for status, share in (("200", 0.9), ("404", 0.07), ("500", 0.03)):
                count = round(requests * share)
                if count:
                    tags = {"host": host, "region": region, "status": status}
                    points.append(("http.requests", "counter", count, tags, at))
    for step, at in enumerate(times):
        daily = math.sin((step / len(times)) * math.pi)
        points.append(("checkout.latency_ms", "value", 90 + 120 * daily, {}, at))
        points.append(("orders.placed", "counter", rng.randrange(4, 20), {}, at))
        points.append(("queue.depth", "value", rng.randrange(0, 40), {}, at))
    return points


def latencies(now):
    """``api.latency_ms``: LATENCY_SAMPLES response times in each STEP of the HOURS before
    ``now``, log-normal with a slow tail, and the same hours a day earlier, when the slow tail
    came at another time of day; the same on every run but for the times."""
    rng = random.Random(95)
    points = []
    for days, phase in ((0, 0.0), (1, 2.0)):
        for step, at in enumerate(moments(now)):
            slow = 1 + 0.6 * max(0.0, math.sin(step / 9 + phase))
            for _ in range(LATENCY_SAMPLES):
                value = 45 * rng.lognormvariate(0, 0.3 * slow)
                points.append(
                    ("api.latency_ms", "value", round(value, 1), {}, at - timedelta(days=days))
                )
    return points


def record(base, key, points):
    """Post the points through the batch route."""
    items = [
        {"name": name, "type": kind, "value": value, "tags": tags, "recorded_at": at.isoformat()}
        for name, kind, value, tags, at in points
    ]
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        request = urllib.request.Request(
            base + "/api/metrics/batch",
            data=json.dumps({"metrics": chunk}).encode(),
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if answer["accepted"] != len(chunk):
            raise SystemExit(f"points refused: {answer['errors'][:3]}")


def browser():
    """Headless Chromium at the screenshot's width, in UTC."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{path} is missing: install chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--window-size={WIDTH},900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(CHROMEDRIVER, env={**os.environ, "TZ": "UTC"})
    return webdriver.Chrome(service=service, options=options)


def shoot(base, key, chart_name, out):
    """Open a chart of CHARTS with the key and save the whole page at WIDTH as a PNG."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    query, _, has_filter = CHARTS[chart_name]
    driver = browser()
    try:
        driver.get(f"{base}/?{query}")
        driver.find_element(By.ID, "api-key").send_keys(key, Keys.ENTER)
        chart = driver.find_element(By.ID, "chart")
        WebDriverWait(driver, WAIT_SECONDS).until(
            lambda _: chart.get_attribute("data-state") in ("ready", "error")
        )
        if chart.get_attribute("data-state") != "ready":
            raise SystemExit(driver.find_element(By.ID, "chart-status").text)
        if has_filter:
            WebDriverWait(driver, WAIT_SECONDS).until(  # the filter row's offered values
                lambda _: driver.find_elements(By.CSS_SELECTOR, "#filter-rows datalist option")
            )
        driver.execute_script("document.activeElement.blur()")  # no caret in the key field
        height = driver.execute_script("return document.documentElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        out.write_bytes(base64.b64decode(shot["data"]))
        print(f"{out}: {WIDTH}x{height}, {driver.find_element(By.ID, 'chart-status').text}")
    finally:
        driver.quit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chart", choices=list(CHARTS), default="grouped")
    parser.add_argument("--out", type=Path, help="default: the chart's file under docs/")
    args = parser.parse_args()
    for name in config.VARIABLES:  # no developer setting reaches the server
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="chart-screenshot-") as folder:
        url = f"sqlite:///{Path(folder) / 'screenshot.sqlite3'}"
        store = Store({"DATABASE_URL": url})
        migrate(store.write)
        store.dispose()
        key, _ = new_key(url, "screenshot", None)
        server = Gunicorn({"DATABASE_URL": url}, log_path=Path(folder) / "gunicorn.log").start()
        try:
            now = datetime.now(UTC)
            record(server.base, key, traffic(now) + latencies(now))
            shoot(server.base, key, args.chart, args.out or CHARTS[args.chart][1])
        finally:
            server.stop()


if __name__ == "__main__":
    main()
