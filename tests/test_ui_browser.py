"""The chart page in a real browser (Debian's Chromium and ChromeDriver) on a real gunicorn.

A missing browser fails these tests: `make test` installs it.
"""

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import new_key

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
)
# A zone with no daylight saving time, so the caption's offset is always the same.
BROWSER_TZ, BROWSER_OFFSET = "Asia/Kolkata", "UTC+05:30"
KEY_STORAGE = "glowing-fiesta.api-key"
WAIT_SECONDS = 20


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium in its own profile, logging the console; quit after the test."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: install chromium and chromium-driver (make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, env={**os.environ, "TZ": BROWSER_TZ})
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()


def post_values(server, key, name, minutes_ago_and_values):
    """Record value points ``minutes`` before now through the API; returns their times."""
    now = datetime.now(UTC)
    times = [now - timedelta(minutes=minutes) for minutes, _ in minutes_ago_and_values]
    items = [
        {"name": name, "type": "value", "value": value, "recorded_at": at.isoformat()}
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


def test_chart_page_draws_the_points_of_a_metric(app, database_url, serve, browser, tmp_path):
    server = serve(DATABASE_URL=database_url)
    key = new_key(app)
    points = [(50, 3), (40, 1), (30, 4), (20, 1), (10, 5)]  # five distinct minutes
    times = post_values(server, key, "checkout.latency", points)
    enter_key(browser, server, key)
    browser.get(server.base + "/?metric=checkout.latency&window=1m&range=1h")
    chart = settled_chart(browser)
    browser.save_screenshot(str(tmp_path / "chart-page.png"))
    status = browser.find_element(By.ID, "chart-status").text
    assert chart.get_attribute("data-state") == "ready", status
    assert chart.get_attribute("data-points") == str(len(points))
    assert "checkout.latency (avg)" in chart.text  # the type's default operation
    expected = [[minute_utc(at), str(value)] for at, (_, value) in zip(times, points, strict=True)]
    assert table_rows(browser) == expected
    caption = browser.find_element(By.ID, "time-caption").text
    assert caption == f"times in UTC (your local offset: {BROWSER_OFFSET})"
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORAGE}')") == key
    assert key not in browser.current_url
    assert key not in browser.execute_script("return document.cookie")
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert any("/api/metrics/aggregate?" in url for url in requested)
    assert not any(key in url for url in requested)
    assert severe_console_entries(browser) == []


def test_ticking_metrics_in_the_list_charts_them_together(app, database_url, serve, browser):
    server = serve(DATABASE_URL=database_url)
    key = new_key(app)
    post_values(server, key, "queue.depth", [(25, 7), (5, 9)])
    post_values(server, key, "queue.age", [(45, 1), (35, 2), (15, 3)])
    post_values(server, key, "checkout.latency", [(5, 1)])
    enter_key(browser, server, key)
    assert browser.find_element(By.ID, "metrics-status").text == "3 metrics"
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


def test_chart_page_shows_api_errors_as_text(app, database_url, serve, browser):
    server = serve(DATABASE_URL=database_url)
    enter_key(browser, server, "gf_" + "A" * 43)  # well formed, but no such key
    listed = browser.find_element(By.ID, "metrics-status").text
    assert listed.startswith("401 UNAUTHORIZED: API key invalid or revoked: send X-API-Key")
    browser.find_element(By.ID, "forget-key").click()
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORAGE}')") is None
    assert browser.find_element(By.ID, "metrics-status").text == "Enter an API key to list metrics."
    enter_key(browser, server, new_key(app))
    browser.get(server.base + "/?metric=no.such.metric")
    chart = settled_chart(browser)
    assert chart.get_attribute("data-state") == "error"
    status = browser.find_element(By.ID, "chart-status")
    assert status.text == "404 METRIC_NOT_FOUND: No metric named 'no.such.metric'"
    assert "error" in status.get_attribute("class")
    refused = ("status of 401", "status of 404")  # the browser logs each failed request
    assert severe_console_entries(browser, allowed=refused) == []
