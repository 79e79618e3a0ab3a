"""The chart page in a real browser (Debian's Chromium and ChromeDriver) on a real gunicorn.

One server serves the module (the page reads the API the same on either backend; the API's own
tests cover both), with small query limits; each test reads metrics of its own prefix. A missing
browser fails these tests: `make test` installs it.
"""

import base64
import json
import math
import os
import re
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import jwt
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from app import config, create_app, shutdown
from app.core.buckets import bucket_range
from app.core.constants import WINDOWS
from app.core.timeutil import EPOCH, utcnow
from app.db import get_store
from app.db.migrate import migrate
from app.jobs.alerts import tick
from tests.harness import Gunicorn
from tests.helpers import check_log, new_key

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# No network here: without the background-networking flags Chromium stalls on refused calls.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
    "--lang=en-US",  # numbers as the tests spell them: 123,457
)
# A zone with no daylight saving time, so the caption's offset is always the same.
BROWSER_TZ, BROWSER_OFFSET = "Asia/Kolkata", "UTC+05:30"
KEY_STORAGE = "glowing-fiesta.api-key"
WAIT_SECONDS = 20
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
# Small enough to reach with a few metrics; the bucket limit keeps its default (10,000), so
# "1 minute" over "last 7 days" (up to 10,081 buckets) is refused as it is out of the box.
PAGE_LIMITS = {"METRICS_MAX_QUERY_NAMES": "3", "METRICS_MAX_QUERY_POINTS": "4000"}
# Points a week and more old, for the compare test.
PAGE_INGEST = {"METRICS_MAX_PAST_DAYS": "30"}
PAGE_JWT = {
    "JWT_SECRET": "chart-page-hs256-secret-of-32-bytes",
    "JWT_ISSUER": "https://login.example.test/",
    "JWT_AUDIENCE": "glowing-fiesta",
}
MISSING = "–"
HOSTS = [f"web-{number:02d}" for number in range(1, 13)]  # 12 values: top 10 and "other"
INVALID_KEY = (
    "This key is not valid (401): the server does not know it, or it was revoked. "
    "Check it, or create a new one."
)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """Headless Chromium for the module in its own profile, logging the console."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: install chromium and chromium-driver (make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, env={**os.environ, "TZ": BROWSER_TZ})
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium):
    """A new tab for the test: its own sessionStorage and size, the console read so far dropped."""
    previous = chromium.current_window_handle
    chromium.switch_to.new_window("tab")
    tab = chromium.current_window_handle
    chromium.switch_to.window(previous)
    chromium.close()
    chromium.switch_to.window(tab)
    chromium.get_log("browser")
    return chromium


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request, browser):
    """The browser at a desktop's and at a phone's size, in turn; the size's name."""
    width, height = VIEWPORTS[request.param]
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1}
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {**metrics, "mobile": request.param == "phone"}
    )
    return request.param


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """gunicorn on a SQLite database of the module's own, with PAGE_LIMITS, a valid key and
    the metrics the tests chart (recorded once, on whole minutes before now)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('page') / 'page.sqlite3'}"
    with pytest.MonkeyPatch.context() as env:  # no developer setting reaches the server
        for name in config.VARIABLES:
            env.delenv(name, raising=False)
        app = create_app({"DATABASE_URL": url})
        migrate(get_store(app).write)
        key = new_key(app)
        shutdown(app)
        server = Gunicorn({"DATABASE_URL": url, **PAGE_LIMITS, **PAGE_INGEST, **PAGE_JWT}).start()
    now = datetime.now(UTC)  # one moment for all, so equal offsets share a bucket
    for name in ("limits.a", "limits.b", "limits.c", "limits.d"):
        post_values(server, key, name, [(10, 1)], now=now)
    # 50 points in 20 minutes: three in each of ten, two in each of ten more.
    post_values(server, key, "status.latency", [(5 + n % 20, n) for n in range(50)], now=now)
    rounded = [(30, 123456.7), (20, 0.000123456), (10, 186.10333333333332)]
    post_values(server, key, "round.latency", rounded, now=now)
    post_values(server, key, "axes.orders", [(20, 3), (10, 3)], kind="counter", now=now)
    post_values(server, key, "axes.latency", [(30, 120.25), (10, 250.5)], now=now)
    # Twelve hosts, web-NN with NN requests at two moments: the largest sums are the last hosts.
    for number, host in enumerate(HOSTS, start=1):
        tags = {"host": host, "status": "500" if number % 2 else "200"}
        points = [(20, number), (10, number)]
        post_values(server, key, "tags.requests", points, "counter", now, tags)
    for host in HOSTS[:2]:
        post_values(server, key, "tags.errors", [(15, 1)], "counter", now, {"host": host})
    post_values(server, key, "tags.none", [(10, 1)], now=now)
    yield SimpleNamespace(server=server, key=key, base=server.base, now=now, url=url)
    server.stop()
    check_log(server)
    server.cleanup()


def post_values(server, key, name, minutes_ago_and_values, kind="value", now=None, tags=None):
    """Record points ``minutes`` before now through the API (each with ``tags``, if given);
    returns their times."""
    now = now or datetime.now(UTC)
    times = [now - timedelta(minutes=minutes) for minutes, _ in minutes_ago_and_values]
    items = [
        {"name": name, "type": kind, "value": value, "recorded_at": at.isoformat()}
        for at, (_, value) in zip(times, minutes_ago_and_values, strict=True)
    ]
    for item in items if tags else ():
        item["tags"] = tags
    request = urllib.request.Request(
        server.base + "/api/metrics/batch",
        data=json.dumps({"metrics": items}).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["accepted"] == len(items)
    return times


def enter_key(browser, server, key):
    """Open the page, type the key into its field and wait for the metric list to answer."""
    browser.get(server.base + "/")
    field = browser.find_element(By.NAME, "api-key")
    field.clear()  # it shows the key this tab already keeps, if any
    field.send_keys(key, Keys.ENTER)
    wait_for_text(browser, "metrics-status", answered)


def answered(text):
    """The metric list's status once its request has come back."""
    return bool(text) and not text.startswith(("Loading", "Enter an API key"))


def wait_for_text(browser, element_id, accept):
    """Wait until the element's text passes ``accept``; returns the text."""
    element = browser.find_element(By.ID, element_id)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda _: accept(element.text))
    return element.text


def settled_chart(browser, points=None):
    """The chart element once it is ready or failed (and, if given, shows ``points``)."""
    chart = browser.find_element(By.ID, "chart")

    def settled(_):
        state = chart.get_attribute("data-state")
        if state == "error":
            return True
        return state == "ready" and points in (None, chart.get_attribute("data-points"))

    WebDriverWait(browser, WAIT_SECONDS).until(settled)
    return chart


def table_rows(browser):
    """The cells of the chart's data table, opened, below its header row."""
    browser.find_element(By.CSS_SELECTOR, "#data-details summary").click()
    # The page fills the table on the details' toggle event, which comes after the click.
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda _: browser.find_elements(By.CSS_SELECTOR, "#data-table th")
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#data-table tr")[1:]
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def severe_console_entries(browser, allowed=()):
    """Console errors, less the failed requests a test provoked on purpose."""
    entries = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    return [e for e in entries if not any(text in e["message"] for text in allowed)]


def minute_local(moment, zone=BROWSER_TZ):
    """How the page writes a bucket's time: in the browser's zone unless another is chosen."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def bucket_time(now, minutes_ago):
    """How the page writes the time of the 1-minute bucket holding a point ``minutes`` ago."""
    return minute_local(now - timedelta(minutes=minutes_ago))


def screenshot(browser, tmp_path, name):
    """The whole page as a PNG in the test's directory; its path, printed."""
    width, height = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = tmp_path / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {path}")
    return path


def text_of(browser, element_id):
    """An element's text as shown."""
    return browser.find_element(By.ID, element_id).text


def choose(browser, select_id, value):
    """Pick an option and wait for the chart to settle."""
    Select(browser.find_element(By.ID, select_id)).select_by_value(value)
    return settled_chart(browser)


def offered(browser, select_id):
    """The values of a select's enabled options, in order."""
    script = "return [...arguments[0].options].filter(o => !o.disabled).map(o => o.value)"
    return browser.execute_script(script, browser.find_element(By.ID, select_id))


def option_text(browser, select_id, value):
    """What an option says."""
    select = browser.find_element(By.ID, select_id)
    return select.find_element(By.CSS_SELECTOR, f"option[value='{value}']").text


def every_offered_choice_draws(browser):
    """Chart every range and window the page offers for what is ticked: each one draws."""
    for range_value in offered(browser, "range"):
        choose(browser, "range", range_value)
        for window in offered(browser, "window"):
            chart = choose(browser, "window", window)
            state = chart.get_attribute("data-state")
            assert state == "ready", (range_value, window, text_of(browser, "chart-status"))


def open_chart(browser, page, query):
    """Enter the key, open the page on ``query`` and wait for the chart to settle."""
    enter_key(browser, page.server, page.key)
    browser.get(f"{page.base}/?{query}")
    return settled_chart(browser)


def rect(browser, selector):
    """An element's box on the page: {x, y, width, height}."""
    return browser.find_element(By.CSS_SELECTOR, selector).rect


def test_chart_page_draws_the_points_of_a_metric(page, browser, tmp_path):
    points = [(50, 3), (40, 1), (30, 4), (20, 1), (10, 5)]  # five distinct minutes
    times = post_values(page.server, page.key, "checkout.latency", points)
    chart = open_chart(browser, page, "metric=checkout.latency&window=1m&range=1h")
    browser.save_screenshot(str(tmp_path / "chart-page.png"))
    status = text_of(browser, "chart-status")
    assert chart.get_attribute("data-state") == "ready", status
    assert chart.get_attribute("data-points") == str(len(points))
    assert "checkout.latency (avg)" in chart.text  # the type's default operation
    values = [str(value) for _, value in points]
    expected = [[minute_local(at), value] for at, value in zip(times, values, strict=True)]
    assert table_rows(browser) == expected
    caption = text_of(browser, "time-caption")
    assert caption == f"times in {BROWSER_TZ} (now {BROWSER_OFFSET})"
    key = page.key
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORAGE}')") == key
    assert key not in browser.current_url
    assert key not in browser.execute_script("return document.cookie")
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert any("/api/metrics/aggregate?" in url for url in requested)
    assert not any(key in url for url in requested)
    assert severe_console_entries(browser) == []


def test_ticking_metrics_in_the_list_charts_them_together(page, browser):
    post_values(page.server, page.key, "queue.depth", [(25, 7), (5, 9)])
    post_values(page.server, page.key, "queue.age", [(45, 1), (35, 2), (15, 3)])
    enter_key(browser, page.server, page.key)
    Select(browser.find_element(By.ID, "range")).select_by_visible_text("last 1 hour")
    Select(browser.find_element(By.ID, "window")).select_by_visible_text("5 minutes")
    browser.find_element(By.ID, "prefix").send_keys("queue.")
    wait_for_text(browser, "metrics-status", lambda text: text == "2 metrics")
    for box in browser.find_elements(By.CSS_SELECTOR, "#metric-list input[type=checkbox]"):
        box.click()
    chart = settled_chart(browser, points="5")
    assert chart.get_attribute("data-state") == "ready"
    assert "queue.age (avg)" in chart.text and "queue.depth (avg)" in chart.text
    assert browser.current_url.endswith("/?metric=queue.age&metric=queue.depth&window=5m&range=1h")
    assert severe_console_entries(browser) == []


def test_chart_page_shows_api_errors_as_text(page, browser):
    enter_key(browser, page.server, page.key)
    browser.get(page.base + "/?metric=no.such.metric")
    chart = settled_chart(browser)
    assert chart.get_attribute("data-state") == "error"
    status = browser.find_element(By.ID, "chart-status")
    assert status.text == "404 METRIC_NOT_FOUND: No metric named 'no.such.metric'"
    assert "error" in status.get_attribute("class")
    browser.find_element(By.ID, "forget-key").click()
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORAGE}')") is None
    assert text_of(browser, "metrics-status") == "Enter an API key to list metrics."
    assert text_of(browser, "chart-status") == "Enter an API key to see charts."
    refused = ("status of 404",)  # the browser logs each failed request
    assert severe_console_entries(browser, allowed=refused) == []


def test_a_window_past_the_bucket_limit_is_never_offered(page, browser, viewport, tmp_path):
    chart = open_chart(browser, page, "metric=limits.a&window=1m&range=7d")
    assert chart.get_attribute("data-state") == "ready", text_of(browser, "chart-status")
    assert text_of(browser, "choice-note") == (
        "Window set to 5 minutes: 1 minute over the last 7 days would be refused "
        "(up to 10,081 buckets; at most 10,000)."
    )
    assert offered(browser, "window") == ["5m", "15m", "1h", "1d"]
    assert option_text(browser, "window", "1m") == "1 minute (too many buckets)"
    assert browser.current_url.endswith("/?metric=limits.a&window=5m&range=7d")
    screenshot(browser, tmp_path, f"window-moved-{viewport}")
    choose(browser, "range", "1h")  # a shorter range offers every window again
    assert offered(browser, "window") == list(WINDOWS)
    assert option_text(browser, "window", "1m") == "1 minute"
    assert text_of(browser, "choice-note") == ""
    every_offered_choice_draws(browser)
    assert severe_console_entries(browser) == []


def test_several_metrics_never_make_a_refused_query(page, browser, viewport, tmp_path):
    enter_key(browser, page.server, page.key)
    browser.get(page.base + "/?window=5m&range=7d")
    wait_for_text(browser, "metrics-status", answered)
    browser.find_element(By.ID, "prefix").send_keys("limits.")
    wait_for_text(browser, "metrics-status", lambda text: text == "4 metrics")
    boxes = browser.find_elements(By.CSS_SELECTOR, "#metric-list input[type=checkbox]")
    boxes[0].click()
    settled_chart(browser, points="1")
    boxes[1].click()  # 2 × 2,017 five-minute buckets pass the 4,000 values a query may have
    chart = settled_chart(browser, points="2")
    assert chart.get_attribute("data-state") == "ready", text_of(browser, "chart-status")
    assert text_of(browser, "choice-note") == (
        "Window set to 15 minutes: 5 minutes over the last 7 days would be refused "
        "(2 metrics × up to 2,017 buckets: 4,034 values; at most 4,000)."
    )
    assert offered(browser, "window") == ["15m", "1h", "1d"]
    boxes[2].click()
    settled_chart(browser, points="3")
    assert [box.is_enabled() for box in boxes] == [True, True, True, False]
    assert text_of(browser, "metrics-full") == "At most 3 metrics at once."
    screenshot(browser, tmp_path, f"three-metrics-{viewport}")
    every_offered_choice_draws(browser)
    boxes[0].click()
    settled_chart(browser, points="2")
    assert boxes[3].is_enabled() and not browser.find_element(By.ID, "metrics-full").is_displayed()
    # A link asking for more than the key allows charts what fits, and says so.
    names = "&".join(f"metric=limits.{letter}" for letter in "abcd")
    chart = open_chart(browser, page, f"{names}&window=1m&range=24h")
    assert chart.get_attribute("data-state") == "ready", text_of(browser, "chart-status")
    assert text_of(browser, "choice-note") == (
        "Charting the first 3 of 4 metrics: at most 3 at once. Window set to 5 minutes: "
        "1 minute over the last 24 hours would be refused "
        "(3 metrics × up to 1,441 buckets: 4,323 values; at most 4,000)."
    )
    names = "&".join(f"metric=limits.{letter}" for letter in "abc")
    assert browser.current_url.endswith(f"/?{names}&window=5m")
    assert severe_console_entries(browser) == []


def test_status_line_counts_buckets_and_those_with_data(page, browser, viewport, tmp_path):
    chart = open_chart(browser, page, "metric=status.latency&window=1m&range=1h")
    status = text_of(browser, "chart-status")
    # 60 one-minute buckets, or 61 when the hour does not start on a whole minute.
    time = r"\d{4}-\d\d-\d\d \d\d:\d\d"
    span = rf"{time} to {time} {BROWSER_TZ}"
    assert re.fullmatch(rf"6[01] buckets, 20 with data \(1m each\), {span}\.", status)
    assert chart.get_attribute("data-points") == "20"  # 50 points, in 20 buckets
    screenshot(browser, tmp_path, f"status-{viewport}")


def test_table_rounds_values_and_keeps_the_exact_ones(page, browser, viewport, tmp_path):
    open_chart(browser, page, "metric=round.latency&window=1m&range=1h")
    times = [bucket_time(page.now, minutes) for minutes in (30, 20, 10)]
    assert table_rows(browser) == [
        [times[0], "123,457"],
        [times[1], "0.0001235"],
        [times[2], "186.1"],
    ]
    cells = browser.find_elements(By.CSS_SELECTOR, "#data-table td + td")
    assert [cell.get_attribute("title") for cell in cells] == [
        "123456.7",
        "0.000123456",
        "186.10333333333332",
    ]
    screenshot(browser, tmp_path, f"table-{viewport}")
    copied = browser.execute_script(COPY_TABLE)
    assert copied.splitlines() == [
        f"Time ({BROWSER_TZ})\tround.latency (avg)",
        f"{times[0]}\t123456.7",
        f"{times[1]}\t0.000123456",
        f"{times[2]}\t186.10333333333332",
    ]


# Select the whole table and copy it as a person would; the page writes what is copied.
COPY_TABLE = """
const table = document.getElementById("data-table");
const range = document.createRange();
range.selectNodeContents(table);
getSelection().removeAllRanges();
getSelection().addRange(range);
const event = new ClipboardEvent("copy", {
  clipboardData: new DataTransfer(), bubbles: true, cancelable: true,
});
table.dispatchEvent(event);
return event.clipboardData.getData("text/plain");
"""


def test_an_invalid_key_is_said_beside_the_key_field(page, browser, viewport, tmp_path):
    browser.get(page.base + "/")
    field = browser.find_element(By.NAME, "api-key")
    assert field.get_attribute("value") == ""  # a new tab keeps no key
    field.send_keys("gf_" + "A" * 43, Keys.ENTER)  # well formed, but no such key
    status = wait_for_text(browser, "key-status", lambda text: text and "Checking" not in text)
    assert status == INVALID_KEY
    element = browser.find_element(By.ID, "key-status")
    assert "error" in element.get_attribute("class")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("aria-describedby") == "key-status"
    # Beside the field: just below it, in the key's section, on the first screen.
    field_box, status_box = field.rect, element.rect
    assert 0 <= status_box["y"] - (field_box["y"] + field_box["height"]) < 60
    assert status_box["y"] + status_box["height"] <= VIEWPORTS[viewport][1]
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORAGE}')") is None
    assert text_of(browser, "metrics-status") == "Enter an API key to list metrics."
    screenshot(browser, tmp_path, f"invalid-key-{viewport}")
    field.clear()
    field.send_keys(page.key, Keys.ENTER)
    wait_for_text(browser, "key-status", lambda text: text == "Key kept for this tab.")
    assert field.get_attribute("aria-invalid") == "false"
    assert "error" not in element.get_attribute("class")
    assert severe_console_entries(browser, allowed=("status of 401",)) == []


def test_on_a_phone_the_chart_comes_before_the_metric_list(page, browser, viewport, tmp_path):
    open_chart(browser, page, "metric=limits.a&window=15m&range=24h")
    key, chart, metrics = (rect(browser, f"section.{name}") for name in ("key", "chart", "metrics"))
    if viewport == "phone":
        assert key["y"] < chart["y"] < metrics["y"]
        assert chart["y"] + chart["height"] <= metrics["y"]
    else:  # side by side: the list on the left
        assert metrics["x"] + metrics["width"] <= chart["x"] and metrics["y"] == chart["y"]
    overflow = "return document.documentElement.scrollWidth - window.innerWidth"
    assert browser.execute_script(overflow) <= 0  # nothing wider than the screen
    screenshot(browser, tmp_path, f"layout-{viewport}")


def test_counters_and_values_get_a_y_axis_each(page, browser, viewport, tmp_path):
    chart = open_chart(browser, page, "metric=axes.orders&metric=axes.latency&window=1m&range=1h")
    assert chart.get_attribute("data-axes") == "counters left, values right"
    assert "axes.orders (sum)" in chart.text and "axes.latency (avg)" in chart.text
    assert re.match(r"6[01] buckets, 3 with data \(1m each\)", text_of(browser, "chart-status"))
    screenshot(browser, tmp_path, f"two-axes-{viewport}")
    chart = open_chart(browser, page, "metric=axes.latency&window=1m&range=1h")
    assert chart.get_attribute("data-axes") == "one"


def test_missing_values_show_one_placeholder(page, browser, viewport, tmp_path):
    chart = open_chart(browser, page, "metric=axes.orders&metric=axes.latency&window=1m&range=1h")
    legend = [cell.text for cell in chart.find_elements(By.CSS_SELECTOR, ".u-legend .u-value")]
    assert legend == [MISSING, MISSING, MISSING]  # no time under the cursor, so no values
    times = [bucket_time(page.now, minutes) for minutes in (30, 20, 10)]
    assert table_rows(browser) == [
        [times[0], "0", "120.3"],  # nothing counted: a sum of 0
        [times[1], "3", MISSING],  # no value: no average
        [times[2], "3", "250.5"],
    ]
    assert "--" not in browser.find_element(By.TAG_NAME, "body").text
    screenshot(browser, tmp_path, f"placeholders-{viewport}")


def test_the_page_counts_buckets_as_the_api_does(page, browser):
    # The page decides what to offer by the API's rule (app/buckets.py), written again in
    # JavaScript: a query's buckets for its start and end, and the most a range can touch.
    browser.get(page.base + "/")
    page_rule = browser.execute_async_script(COUNT_BUCKETS, STARTS)
    assert page_rule["windows"] == WINDOWS
    for window, seconds in WINDOWS.items():
        for range_name, range_seconds in page_rule["ranges"].items():
            spans = page_rule["spans"][window][range_name]
            most = page_rule["most"][window][range_name]
            for start, span in zip(STARTS, spans, strict=True):
                assert span == api_span(start, start + range_seconds, seconds), (window, start)
            # Wherever a range starts (on a whole minute or a second past), never more.
            starts = [k * 60 + extra for k in range(seconds // 60) for extra in (0, 1)]
            counts = {len_of(api_span(s, s + range_seconds, seconds)) for s in starts}
            assert most == max(counts), (window, range_name)


STARTS = [1_764_806_400 + offset for offset in (0, 1, 59, 60, 299, 899, 3599, 43_200, 86_399)]


def api_span(start, end, window_seconds):
    """The API's [first, last] bucket of a query from ``start`` to ``end`` (Unix seconds)."""
    moments = (EPOCH + timedelta(seconds=moment) for moment in (start, end))
    return list(bucket_range(*moments, window_seconds))


def len_of(span):
    """How many buckets a [first, last] span holds."""
    return span[1] - span[0] + 1


COUNT_BUCKETS = """
const [starts, done] = arguments;
import("/static/js/choice.js").then((choice) => {
  const { WINDOW_SECONDS, RANGE_SECONDS, bucketSpan, mostBuckets } = choice;
  const answer = { windows: WINDOW_SECONDS, ranges: RANGE_SECONDS, spans: {}, most: {} };
  for (const [window, seconds] of Object.entries(WINDOW_SECONDS)) {
    answer.spans[window] = {};
    answer.most[window] = {};
    for (const [name, range] of Object.entries(RANGE_SECONDS)) {
      answer.spans[window][name] = starts.map((start) => {
        const { first, last } = bucketSpan(start, start + range, seconds);
        return [first, last];
      });
      answer.most[window][name] = mostBuckets(range, seconds);
    }
  }
  done(answer);
});
"""


# The tag controls: group by a key (top 10 and "other"), filters, and the requests they make.
TOP_TEN = [f"host={host}" for host in reversed(HOSTS[2:])]  # web-12 … web-03: largest first


def legend(browser):
    """The chart's legend entries, less the time."""
    labels = browser.find_elements(By.CSS_SELECTOR, "#chart .u-legend .u-series .u-label")
    return [label.text for label in labels][1:]


def wait_for_legend(browser, expected):
    """Wait until the chart is ready with the ``expected`` legend; returns the chart."""
    chart = browser.find_element(By.ID, "chart")

    def drawn(_):
        return chart.get_attribute("data-state") == "ready" and legend(browser) == expected

    try:
        WebDriverWait(browser, WAIT_SECONDS).until(drawn)
    except TimeoutException:
        state = chart.get_attribute("data-state")
        raise AssertionError((state, legend(browser), text_of(browser, "chart-status"))) from None
    return chart


def aggregate_requests(browser):
    """The query parameters of every aggregate request the page made, in order."""
    names = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    return [
        parse_qs(urlsplit(name).query, keep_blank_values=True)
        for name in names
        if urlsplit(name).path == "/api/metrics/aggregate"
    ]


def group_by(browser, key):
    """Pick a key in the "group by" select."""
    Select(browser.find_element(By.ID, "group-by")).select_by_value(key)


def add_filter(browser, key, op, value):
    """Add a filter row and fill it; returns the row."""
    browser.find_element(By.ID, "add-filter").click()
    row = browser.find_elements(By.CSS_SELECTOR, "#filter-rows li")[-1]
    Select(row.find_element(By.CLASS_NAME, "filter-key")).select_by_value(key)
    Select(row.find_element(By.CLASS_NAME, "filter-op")).select_by_value(op)
    row.find_element(By.CLASS_NAME, "filter-value").send_keys(value)
    return row


def offered_values(row):
    """The values a filter row's value field offers (its datalist)."""
    options = row.find_elements(By.CSS_SELECTOR, "datalist option")
    return [option.get_attribute("value") for option in options]


def wait_for_values(browser, row, accept):
    """Wait until a filter row offers values that pass ``accept``; returns them."""
    WebDriverWait(browser, WAIT_SECONDS).until(lambda _: accept(offered_values(row)))
    return offered_values(row)


def test_grouping_by_a_tag_draws_the_ten_largest_and_other(page, browser, viewport, tmp_path):
    open_chart(browser, page, "metric=tags.requests&window=1m&range=1h")
    wait_for_text(browser, "tags-hint", lambda text: text == "")  # the listing has come
    assert offered(browser, "group-by") == ["", "host", "status"]
    assert option_text(browser, "group-by", "host") == "host (12 values)"
    group_by(browser, "host")
    chart = wait_for_legend(browser, [*TOP_TEN, "other"])
    assert chart.get_attribute("data-points") == str(11 * 2)  # two buckets of each group
    status = text_of(browser, "chart-status")
    assert status.endswith("Grouped by host (sum): 10 groups and “other” with data."), status
    assert "10 largest groups by host" in text_of(browser, "tags-hint")
    last = aggregate_requests(browser)[-1]
    assert last["group_by"] == ["host"] and last["top"] == ["10"] and "filter" not in last
    assert browser.current_url.endswith("/?metric=tags.requests&window=1m&range=1h&group_by=host")
    times = [bucket_time(page.now, minutes) for minutes in (20, 10)]
    sums = [str(number) for number in range(12, 2, -1)] + ["3"]  # web-01 and web-02 add up
    assert table_rows(browser) == [[time, *sums] for time in times]
    head = browser.find_elements(By.CSS_SELECTOR, "#data-table th")
    assert [cell.text for cell in head] == [f"Time ({BROWSER_TZ})", *TOP_TEN, "other"]
    screenshot(browser, tmp_path, f"grouped-{viewport}")
    overflow = "return document.documentElement.scrollWidth - window.innerWidth"
    assert browser.execute_script(overflow) <= 0
    group_by(browser, "")  # none: one line again
    wait_for_legend(browser, ["tags.requests (sum)"])
    assert "group_by" not in aggregate_requests(browser)[-1]
    assert severe_console_entries(browser) == []


def test_filters_keep_only_the_matching_series(page, browser, viewport, tmp_path):
    open_chart(browser, page, "metric=tags.requests&window=1m&range=1h&group_by=host")
    wait_for_legend(browser, [*TOP_TEN, "other"])
    row = add_filter(browser, "status", "=", "500")
    odd = [f"host={host}" for host in reversed(HOSTS[::2])]  # web-11, web-09 … web-01
    wait_for_legend(browser, odd)  # six groups: "other" is empty, so not drawn
    assert row.get_attribute("data-state") == "applied"
    assert wait_for_values(browser, row, bool) == ["500"]  # the values starting with "500"
    last = aggregate_requests(browser)[-1]
    assert last["filter"] == ["status=500"]
    assert last["group_by"] == ["host"] and last["top"] == ["10"]
    assert text_of(browser, "chart-status").endswith(
        "Grouped by host (sum): 6 groups with data. Filtered: status=500."
    )
    assert browser.current_url.endswith("&group_by=host&filter=status%3D500")
    screenshot(browser, tmp_path, f"filtered-{viewport}")
    second = add_filter(browser, "host", "=~", "web-1.")  # AND-ed: web-11 only
    wait_for_legend(browser, ["host=web-11"])
    assert aggregate_requests(browser)[-1]["filter"] == ["status=500", "host=~web-1."]
    assert wait_for_values(browser, second, bool) == HOSTS  # a regex: every value
    row.find_element(By.CLASS_NAME, "filter-remove").click()
    wait_for_legend(browser, ["host=web-12", "host=web-11", "host=web-10"])
    assert aggregate_requests(browser)[-1]["filter"] == ["host=~web-1."]
    # A link with the grouping and filters opens straight on the same chart.
    link = browser.current_url
    browser.get(link)
    wait_for_legend(browser, ["host=web-12", "host=web-11", "host=web-10"])
    rows = browser.find_elements(By.CSS_SELECTOR, "#filter-rows li")
    assert [one.get_attribute("data-state") for one in rows] == ["applied"]
    value = rows[0].find_element(By.CLASS_NAME, "filter-value")
    assert value.get_attribute("value") == "web-1."
    assert severe_console_entries(browser) == []


def test_a_filter_the_api_would_refuse_is_never_sent(page, browser):
    open_chart(browser, page, "metric=tags.requests&window=1m&range=1h")
    wait_for_legend(browser, ["tags.requests (sum)"])
    asked = len(aggregate_requests(browser))
    row = add_filter(browser, "host", "=~", "web-(")
    note = row.find_element(By.CLASS_NAME, "filter-note")
    invalid = lambda _: row.get_attribute("data-state") == "invalid"  # noqa: E731
    WebDriverWait(browser, WAIT_SECONDS).until(invalid)
    assert note.text.startswith("Not a valid regex")
    assert row.find_element(By.CLASS_NAME, "filter-value").get_attribute("aria-invalid") == "true"
    for op, value in (("=~", "(?=web)"), ("=", "web,01"), ("!=", "a\\b")):
        field = row.find_element(By.CLASS_NAME, "filter-value")
        field.clear()  # no value: nothing applies while the operator changes
        Select(row.find_element(By.CLASS_NAME, "filter-op")).select_by_value(op)
        field.send_keys(value)
        WebDriverWait(browser, WAIT_SECONDS).until(lambda _: note.text)
        assert row.get_attribute("data-state") == "invalid", (op, value, note.text)
    time.sleep(1)  # longer than the page waits for typing to end
    assert len(aggregate_requests(browser)) == asked  # nothing asked, so nothing refused
    assert "filter" not in browser.current_url
    assert severe_console_entries(browser) == []


def test_a_metric_without_tags_offers_no_grouping(page, browser):
    open_chart(browser, page, "metric=tags.none&window=1m&range=1h")
    hint = wait_for_text(browser, "tags-hint", lambda text: text.startswith("This metric"))
    assert hint == "This metric has no tags: nothing to group or filter by."
    assert not browser.find_element(By.ID, "group-by").is_enabled()
    assert not browser.find_element(By.ID, "add-filter").is_enabled()
    # A link grouping by a key the metric lacks charts it ungrouped, and says so.
    chart = open_chart(browser, page, "metric=tags.none&window=1m&range=1h&group_by=host")
    wait_for_legend(browser, ["tags.none (avg)"])
    assert chart.get_attribute("data-state") == "ready"
    hint = text_of(browser, "tags-hint")
    assert hint.startswith("Not grouped by host: tags.none has no tag host."), hint
    assert "group_by" not in aggregate_requests(browser)[-1]
    assert browser.current_url.endswith("/?metric=tags.none&window=1m&range=1h")
    assert severe_console_entries(browser) == []


def test_grouping_never_makes_a_refused_query(page, browser, viewport, tmp_path):
    open_chart(browser, page, "metric=tags.requests&window=1m&range=24h")
    wait_for_legend(browser, ["tags.requests (sum)"])
    assert offered(browser, "window") == list(WINDOWS)  # 1,441 buckets: one line fits
    group_by(browser, "host")  # 11 groups × 1,441 buckets do not
    wait_for_legend(browser, [*TOP_TEN, "other"])
    assert text_of(browser, "choice-note") == (
        "Window set to 5 minutes: 1 minute over the last 24 hours would be refused "
        "(1 metric × 11 groups × up to 1,441 buckets: 15,851 values; at most 4,000)."
    )
    assert offered(browser, "window") == ["5m", "15m", "1h", "1d"]
    assert aggregate_requests(browser)[-1]["window"] == ["5m"]
    screenshot(browser, tmp_path, f"grouped-window-moved-{viewport}")
    every_offered_choice_draws(browser)
    assert aggregate_requests(browser)[-1]["top"] == ["10"]  # still grouped
    assert severe_console_entries(browser) == []


def test_several_metrics_group_each_by_the_tag(page, browser):
    query = "metric=tags.requests&metric=tags.errors&window=1m&range=1h&group_by=host"
    open_chart(browser, page, query)
    named = [f"tags.requests{{{label}}}" for label in TOP_TEN]
    errors = [f"tags.errors{{host={host}}}" for host in HOSTS[:2]]  # ≤ 10: no "other"
    wait_for_legend(browser, [*named, "tags.requests{other}", *errors])
    assert option_text(browser, "group-by", "host") == "host"  # counts differ by metric
    last = aggregate_requests(browser)[-1]
    assert last["name"] == ["tags.requests,tags.errors"] and last["group_by"] == ["host"]
    assert severe_console_entries(browser) == []


def test_the_grouping_stays_while_no_metric_is_ticked(page, browser):
    open_chart(browser, page, "metric=tags.requests&window=1m&range=1h&group_by=host")
    wait_for_legend(browser, [*TOP_TEN, "other"])
    box = browser.find_element(By.CSS_SELECTOR, "#metric-list input[value='tags.requests']")
    box.click()
    wait_for_text(browser, "tags-hint", lambda text: text.startswith("Choose a metric"))
    assert not browser.find_element(By.ID, "group-by").is_enabled()
    assert browser.current_url.endswith("/?window=1m&range=1h&group_by=host")
    box.click()
    wait_for_legend(browser, [*TOP_TEN, "other"])
    assert aggregate_requests(browser)[-1]["group_by"] == ["host"]
    assert severe_console_entries(browser) == []


def test_a_jwt_in_the_key_field_works_as_a_key(page, browser):
    claims = {
        "iss": PAGE_JWT["JWT_ISSUER"],
        "aud": PAGE_JWT["JWT_AUDIENCE"],
        "sub": "chart-viewer",
        "tenant": "default",
        "scope": "read",
        "exp": int(datetime.now(UTC).timestamp()) + 600,
    }
    enter_key(browser, page.server, jwt.encode(claims, PAGE_JWT["JWT_SECRET"], algorithm="HS256"))
    wait_for_text(browser, "key-status", lambda text: text == "Key kept for this tab.")
    assert "limits.a" in browser.find_element(By.ID, "metric-list").text
    assert severe_console_entries(browser) == []


# Time zones and compare.
MARKER_STYLE = """
const markers = [...document.querySelectorAll("#chart .u-legend .u-series .u-marker")].slice(1);
return markers.map((marker) => [marker.style.borderStyle, marker.style.borderColor]);
"""


def test_compare_draws_the_earlier_series_dashed_under_the_current_one(page, browser, tmp_path):
    week_ago = page.now - timedelta(days=7)
    post_values(page.server, page.key, "compare.views", [(10, 5)], now=page.now)
    post_values(page.server, page.key, "compare.views", [(10, 2)], now=week_ago)
    open_chart(browser, page, "metric=compare.views&window=1m&range=1h")
    assert offered(browser, "compare") == ["", "1d", "1w", "4w"]
    Select(browser.find_element(By.ID, "compare")).select_by_value("1w")
    chart = wait_for_legend(browser, ["compare.views (avg)", "compare.views (avg, 1 week earlier)"])
    assert aggregate_requests(browser)[-1]["compare"] == ["1w"]
    assert browser.current_url.endswith("/?metric=compare.views&window=1m&range=1h&compare=1w")
    (current, current_color), (earlier, earlier_color) = browser.execute_script(MARKER_STYLE)
    assert (current, earlier) == ("solid", "dashed") and earlier_color == current_color
    assert chart.get_attribute("data-points") == "2"
    # Moved forward by the week: the earlier value stands in the row of the current bucket.
    assert table_rows(browser) == [[bucket_time(page.now, 10), "5", "2"]]
    assert "Dashed: the same query 1 week earlier" in text_of(browser, "chart-status")
    screenshot(browser, tmp_path, "compare")
    # Compare counts every bucket twice: two metrics over 24 hours no longer fit 1-minute buckets.
    browser.get(f"{page.base}/?metric=limits.a&metric=limits.b&window=1m&range=24h&compare=1w")
    settled_chart(browser)
    assert "1m" not in offered(browser, "window")
    assert Select(browser.find_element(By.ID, "window")).first_selected_option.text == "5 minutes"
    assert "Window set to 5 minutes" in text_of(browser, "choice-note")
    last = aggregate_requests(browser)[-1]
    assert last["window"] == ["5m"] and last["compare"] == ["1w"]
    assert severe_console_entries(browser) == []


def exact_rows(browser):
    """The data table's rows as drawn: each row's time, then each series' exact value (None
    for a gap)."""
    table_rows(browser)  # opened and filled
    script = """
    return [...document.querySelectorAll("#data-table tr")].slice(1).map((row) =>
      [...row.cells].map((cell, at) => (at === 0 ? cell.textContent : cell.dataset.value)));
    """
    rows = browser.execute_script(script)
    return [[time, *(float(v) if v else None for v in values)] for time, *values in rows]


def nearest_rank(values, q):
    """The q-quantile of ``values`` by the nearest-rank rule: the ⌈q·n⌉-th smallest."""
    return sorted(values)[math.ceil(q * len(values)) - 1]


def post_minute(page, name, minute, values):
    """Record ``values`` a few seconds apart inside the minute starting at ``minute``."""
    start = minute + timedelta(seconds=5)
    post_values(
        page.server, page.key, name, [(-n / 30, v) for n, v in enumerate(values)], now=start
    )


def test_a_value_metrics_p95_is_drawn_as_the_api_answers_it_with_a_compare_line(
    page, browser, tmp_path
):
    minute, day = page.now.replace(second=0, microsecond=0), timedelta(days=1)
    # Each minute's values, heavy-tailed so that p95 is not the largest.
    current = {
        minute - timedelta(minutes=20): [*range(100, 119), 5000],
        minute - timedelta(minutes=10): [*range(1, 20), 900],
    }
    earlier = {minute - timedelta(minutes=10) - day: [*range(2, 40, 2), 700]}
    for start, values in (current | earlier).items():
        post_minute(page, "percentile.latency", start, values)
    open_chart(browser, page, "metric=percentile.latency&window=1m&range=1h")
    assert offered(browser, "operation")[-4:] == ["p50", "p90", "p95", "p99"]
    choose(browser, "operation", "p95")
    wait_for_legend(browser, ["percentile.latency (p95)"])
    choose(browser, "compare", "1d")
    chart = wait_for_legend(
        browser, ["percentile.latency (p95)", "percentile.latency (p95, 1 day earlier)"]
    )
    asked = aggregate_requests(browser)[-1]
    assert asked["operation"] == ["p95"] and asked["compare"] == ["1d"]
    query = "/?metric=percentile.latency&operation=p95&window=1m&range=1h&compare=1d"
    assert browser.current_url.endswith(query)
    (current_line, current_color), (earlier_line, earlier_color) = legend_markers(browser)
    assert (current_line, earlier_line) == ("solid", "dashed") and earlier_color == current_color
    assert chart.get_attribute("data-points") == "3"
    # The drawn values are the API's answer to the same query, the earlier buckets moved
    # forward by the day into the rows of the current ones.
    answer = api(page, "GET", "/api/metrics/aggregate?" + urlencode(asked, doseq=True))
    assert answer["operation"] == "p95"
    rows = {}
    for column, shift, points in ((0, None, answer["data"]), (1, day, answer["compare"]["data"])):
        for point in points:
            moment = datetime.fromisoformat(point["timestamp"]) + (shift or timedelta())
            rows.setdefault(minute_local(moment), [None, None])[column] = point["value"]
    assert exact_rows(browser) == [[time, *values] for time, values in sorted(rows.items())]
    # And each is its bucket's nearest-rank p95.
    expected = {minute_local(start): [nearest_rank(v, 0.95), None] for start, v in current.items()}
    for start, values in earlier.items():
        expected[minute_local(start + day)][1] = nearest_rank(values, 0.95)
    assert rows.keys() == expected.keys()
    for row, values in expected.items():
        assert [v is None for v in rows[row]] == [v is None for v in values], row
        assert [v for v in rows[row] if v is not None] == pytest.approx(
            [v for v in values if v is not None], rel=0.01
        ), row
    screenshot(browser, tmp_path, "p95-compare")
    assert severe_console_entries(browser) == []


def test_a_counters_operation_picker_offers_no_percentiles(page, browser):
    everyday = ["", "sum", "count", "avg", "min", "max"]
    open_chart(browser, page, "metric=axes.orders&window=1m&range=1h")
    assert offered(browser, "operation") == everyday
    # Charted with a value metric the counter still rules them out: the API would refuse it.
    open_chart(browser, page, "metric=axes.orders&metric=axes.latency&window=1m&range=1h")
    assert offered(browser, "operation") == everyday
    # A value metric's p99, then the counter instead: back to the counter's default.
    open_chart(browser, page, "metric=axes.latency&window=1m&range=1h")
    assert offered(browser, "operation") == [*everyday, "p50", "p90", "p95", "p99"]
    choose(browser, "operation", "p99")
    wait_for_legend(browser, ["axes.latency (p99)"])
    browser.find_element(By.ID, "prefix").send_keys("axes.")
    wait_for_text(browser, "metrics-status", lambda text: text == "2 metrics")
    boxes = browser.find_elements(By.CSS_SELECTOR, "#metric-list input[type=checkbox]")
    latency, orders = sorted(boxes, key=lambda box: box.get_attribute("value"))
    latency.click()
    wait_for_text(browser, "chart-status", lambda text: text.startswith("Choose one or more"))
    orders.click()
    wait_for_legend(browser, ["axes.orders (sum)"])
    assert (
        Select(browser.find_element(By.ID, "operation")).first_selected_option.get_attribute(
            "value"
        )
        == ""
    )
    assert text_of(browser, "choice-note") == (
        "Operation set to the metric's default: p99 is a percentile of value metrics, "
        "and axes.orders is a counter."
    )
    assert browser.current_url.endswith("/?metric=axes.orders&window=1m&range=1h")
    assert "operation" not in aggregate_requests(browser)[-1]
    # A link asking a counter's percentile charts its default without asking for the percentile.
    open_chart(browser, page, "metric=axes.orders&operation=p95&window=1m&range=1h")
    wait_for_legend(browser, ["axes.orders (sum)"])
    assert all("operation" not in asked for asked in aggregate_requests(browser))
    assert "p95 is a percentile of value metrics" in text_of(browser, "choice-note")
    assert severe_console_entries(browser) == []


def test_a_time_zone_buckets_and_shows_local_times(page, browser, tmp_path):
    times = post_values(page.server, page.key, "zone.views", [(300, 3), (10, 7)], now=page.now)

    def hourly_rows(zone):
        # Local whole hours: Asia/Kolkata's start at :30 UTC, and the table shows them as :00.
        hours = [at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:00") for at in times]
        return [[hour, value] for hour, value in zip(hours, ("3", "7"), strict=True)]

    # The browser's zone by default.
    open_chart(browser, page, "metric=zone.views&window=1h&range=24h")
    assert aggregate_requests(browser)[-1]["tz"] == [BROWSER_TZ]
    assert table_rows(browser) == hourly_rows(BROWSER_TZ)
    head = browser.find_elements(By.CSS_SELECTOR, "#data-table th")
    assert [cell.text for cell in head] == [f"Time ({BROWSER_TZ})", "zone.views (avg)"]
    assert legend_time_label(browser) == f"Time ({BROWSER_TZ})"
    assert browser.current_url.endswith("/?metric=zone.views&window=1h")  # 24 hours: the default
    # UTC: no tz sent, UTC hours (the open table is filled again).
    choose(browser, "tz", "UTC")
    assert "tz" not in aggregate_requests(browser)[-1]
    assert rows_shown(browser) == hourly_rows("UTC")
    assert text_of(browser, "time-caption").startswith("times in UTC")
    assert browser.current_url.endswith("/?metric=zone.views&window=1h&tz=UTC")
    # Another zone from a link.
    zone = "America/New_York"
    open_chart(browser, page, f"metric=zone.views&window=1h&range=24h&tz={zone}")
    assert aggregate_requests(browser)[-1]["tz"] == [zone]
    assert table_rows(browser) == hourly_rows(zone)
    assert legend_time_label(browser) == f"Time ({zone})"
    assert text_of(browser, "time-caption").startswith(f"times in {zone} (now UTC-0")
    screenshot(browser, tmp_path, "zone")
    assert severe_console_entries(browser) == []


def rows_shown(browser):
    """The cells of the data table as it is (already open), below its header row."""
    rows = browser.find_elements(By.CSS_SELECTOR, "#data-table tr")[1:]
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def legend_time_label(browser):
    """The legend's first entry: the time column's name."""
    return browser.find_element(By.CSS_SELECTOR, "#chart .u-legend .u-series .u-label").text


# Alerts: thresholds on the chart, and the firing ones listed above it.
NOTIFY = "email:ops@example.com"  # never delivered here (no SMTP_URL): the page does not mind
RED, AMBER = "rgb(239, 68, 68)", "rgb(245, 158, 11)"


def api(page, method, path, body=None):
    """A JSON call to the page's server with its key; the answer's body."""
    request = urllib.request.Request(
        page.base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": page.key, "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def value_alert(page, metric, window, condition, threshold):
    """Create a value alert on ``metric``; the API's answer."""
    body = {"metric": metric, "kind": "value", "window": window, "condition": condition,
            "threshold": threshold, "notify": [NOTIFY]}  # fmt: skip
    return api(page, "POST", "/api/alerts", body)


def evaluate_alerts(page):
    """Judge every alert now, as the server's timer would (again while it holds the lock)."""
    with pytest.MonkeyPatch.context() as env:
        for name in config.VARIABLES:
            env.delenv(name, raising=False)
        app = create_app({"DATABASE_URL": page.url})
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while "skipped" in tick(get_store(app), app.config, utcnow()):
                assert time.monotonic() < deadline, "the alerts' lock stayed taken"
                time.sleep(0.5)
        finally:
            shutdown(app)


def legend_markers(browser):
    """Each legend entry's marker, less the time's: [border style, border colour]."""
    return browser.execute_script(MARKER_STYLE)


def test_a_value_alerts_threshold_is_drawn_on_its_metrics_chart_only(page, browser, tmp_path):
    post_values(page.server, page.key, "alerting.latency", [(20, 3), (10, 4)])
    # Nothing in the last closed 5 minutes: an average of nothing never fires, so it stays ok.
    alert = value_alert(page, "alerting.latency", "5m", ">", 250)
    line = f"alert #{alert['id']}: > 250 (avg over 5m, ok)"
    chart = open_chart(browser, page, "metric=alerting.latency&window=1m&range=1h")
    wait_for_legend(browser, ["alerting.latency (avg)", line])
    assert chart.get_attribute("data-thresholds") == "1"
    assert chart.get_attribute("data-points") == "2"  # the threshold is no data
    assert legend_markers(browser)[1] == ["dotted", AMBER]
    assert [row[1:] for row in table_rows(browser)] == [["3"], ["4"]]  # nor in the table
    screenshot(browser, tmp_path, "alert-threshold")
    # Another operation than the alert's: the threshold would say nothing of this line.
    choose(browser, "operation", "max")
    wait_for_legend(browser, ["alerting.latency (max)"])
    assert chart.get_attribute("data-thresholds") == "0"
    choose(browser, "operation", "avg")  # the alert's (the metric's default), named
    wait_for_legend(browser, ["alerting.latency (avg)", line])
    # Another metric's chart has none of it; charted together, only its own metric's.
    open_chart(browser, page, "metric=limits.a&window=1m&range=1h")
    wait_for_legend(browser, ["limits.a (avg)"])
    open_chart(browser, page, "metric=limits.a&metric=alerting.latency&window=1m&range=1h")
    wait_for_legend(browser, ["limits.a (avg)", "alerting.latency (avg)", line])
    assert not browser.find_element(By.ID, "firing-alerts").is_displayed()
    assert severe_console_entries(browser) == []


def test_a_firing_alert_is_listed_with_a_link_to_its_chart(page, browser, tmp_path):
    post_values(page.server, page.key, "alerting.errors", [(20, 4), (10, 5)], "counter")
    open_chart(browser, page, "metric=limits.a&window=1m&range=1h")
    box = browser.find_element(By.ID, "firing-alerts")
    assert not box.is_displayed()  # none fires yet
    alert = value_alert(page, "alerting.errors", "1h", ">", 5)  # 9 in the last hour
    evaluate_alerts(page)
    assert api(page, "GET", f"/api/alerts/{alert['id']}")["state"] == "firing"
    browser.find_element(By.ID, "refresh").click()  # the alerts are read again
    WebDriverWait(browser, WAIT_SECONDS).until(lambda _: box.is_displayed())
    entries = browser.find_elements(By.CSS_SELECTOR, "#firing-list li")
    [entry] = [one for one in entries if one.text.endswith(f"(alert #{alert['id']})")]
    assert re.fullmatch(
        rf"alerting\.errors — value: > 5 \(over 1h\), since "
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d {BROWSER_TZ} \(alert #{alert['id']}\)",
        entry.text,
    ), entry.text
    link = entry.find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href") == f"{page.base}/?metric=alerting.errors"
    screenshot(browser, tmp_path, "firing-alerts")
    link.click()
    line = f"alert #{alert['id']}: > 5 (sum over 1h, firing)"
    wait_for_legend(browser, ["alerting.errors (sum)", line])
    assert legend_markers(browser)[1] == ["dotted", RED]
    assert browser.find_element(By.ID, "firing-alerts").is_displayed()
    assert severe_console_entries(browser) == []
