"""The chart page in a real browser (Debian's Chromium and ChromeDriver) on a real gunicorn.

One server serves the module (the page reads the API the same on either backend; the API's own
tests cover both), with small query limits; each test reads metrics of its own prefix. A missing
browser fails these tests: `make test` installs it.
"""

import base64
import json
import os
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jwt
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from app import config, create_app, shutdown
from app.core.buckets import bucket_range
from app.core.constants import WINDOWS
from app.core.timeutil import EPOCH
from app.db import get_store
from app.db.migrate import migrate
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
PAGE_JWT = {
    "JWT_SECRET": "chart-page-hs256-secret-of-32-bytes",
    "JWT_ISSUER": "https://login.example.test/",
    "JWT_AUDIENCE": "glowing-fiesta",
}
MISSING = "–"
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
        server = Gunicorn({"DATABASE_URL": url, **PAGE_LIMITS, **PAGE_JWT}).start()
    now = datetime.now(UTC)  # one moment for all, so equal offsets share a bucket
    for name in ("limits.a", "limits.b", "limits.c", "limits.d"):
        post_values(server, key, name, [(10, 1)], now=now)
    # 50 points in 20 minutes: three in each of ten, two in each of ten more.
    post_values(server, key, "status.latency", [(5 + n % 20, n) for n in range(50)], now=now)
    rounded = [(30, 123456.7), (20, 0.000123456), (10, 186.10333333333332)]
    post_values(server, key, "round.latency", rounded, now=now)
    post_values(server, key, "axes.orders", [(20, 3), (10, 3)], kind="counter", now=now)
    post_values(server, key, "axes.latency", [(30, 120.25), (10, 250.5)], now=now)
    yield SimpleNamespace(server=server, key=key, base=server.base, now=now)
    server.stop()
    check_log(server)
    server.cleanup()


def post_values(server, key, name, minutes_ago_and_values, kind="value", now=None):
    """Record points ``minutes`` before now through the API; returns their times."""
    now = now or datetime.now(UTC)
    times = [now - timedelta(minutes=minutes) for minutes, _ in minutes_ago_and_values]
    items = [
        {"name": name, "type": kind, "value": value, "recorded_at": at.isoformat()}
        for at, (_, value) in zip(times, minutes_ago_and_values, strict=True)
    ]
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


def minute_utc(moment):
    """How the page writes a bucket's time."""
    return moment.strftime("%Y-%m-%d %H:%M")


def bucket_time(now, minutes_ago):
    """How the page writes the time of the 1-minute bucket holding a point ``minutes`` ago."""
    return minute_utc(now - timedelta(minutes=minutes_ago))


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
    expected = [[minute_utc(at), str(value)] for at, (_, value) in zip(times, points, strict=True)]
    assert table_rows(browser) == expected
    caption = text_of(browser, "time-caption")
    assert caption == f"times in UTC (your local offset: {BROWSER_OFFSET})"
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
    assert re.fullmatch(rf"6[01] buckets, 20 with data \(1m each\), {time} to {time} UTC\.", status)
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
        "Time (UTC)\tround.latency (avg)",
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
