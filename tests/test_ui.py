"""GET / and /static: the chart page's HTML, its security headers and the files it loads."""

import re
from html.parser import HTMLParser

import pytest

from app import create_app, shutdown
from app.core.constants import OPERATIONS, WINDOWS

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
JS_IMPORT_RE = re.compile(r'^import .* from "\./([\w.-]+\.js)";$', re.MULTILINE)


class PageParts(HTMLParser):
    """What a page would run or load: script sources, linked files and anything inline."""

    def __init__(self):
        super().__init__()
        self.scripts = []
        self.files = []
        self.inline = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "style" or "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline.append((tag, attrs))
        if tag == "script":
            self.scripts.append(attrs.get("src"))
            self._in_script = True
        url = attrs.get("src") if tag == "script" else attrs.get("href") if tag == "link" else None
        if url and not url.startswith("data:"):
            self.files.append(url)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(("script", data))


@pytest.fixture
def page_client(tmp_path):
    """A test client; the page never touches the database, so one backend is enough."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'ui.sqlite3'}"})
    yield app.test_client()
    shutdown(app)


def get(client, url):
    """GET a page or file, read whole and closed (files are streamed from an open file)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


class Elements(HTMLParser):
    """Every element with an id, in document order: (tag, attributes), and each select's
    option values."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.options = {}
        self._select = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.by_id[attrs["id"]] = (tag, attrs)
        if tag == "select":
            self._select = self.options.setdefault(attrs["id"], [])
        elif tag == "option" and self._select is not None:
            self._select.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def page_elements(client):
    """The chart page's elements with an id."""
    elements = Elements()
    elements.feed(get(client, "/").get_data(as_text=True))
    return elements


def page_parts(client):
    """The parsed chart page."""
    parts = PageParts()
    parts.feed(get(client, "/").get_data(as_text=True))
    return parts


def test_chart_page_is_html_served_without_a_key(page_client):
    response = get(page_client, "/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<input id="api-key" name="api-key" type="password"' in html
    assert 'id="chart"' in html and 'data-state="idle"' in html and 'data-points="0"' in html
    assert 'for="prefix"' in html and 'for="operation"' in html and 'for="window"' in html


def test_chart_page_has_a_strict_content_security_policy(page_client):
    headers = get(page_client, "/").headers
    policy = [d.strip() for d in headers["Content-Security-Policy"].split(";")]
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in policy
    assert "unsafe" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_chart_page_has_no_inline_script_or_style(page_client):
    parts = page_parts(page_client)
    assert parts.inline == []
    assert parts.scripts and all(src and src.startswith("/static/") for src in parts.scripts)


def test_every_file_the_page_loads_is_served_with_its_type(page_client):
    pending = list(page_parts(page_client).files)
    seen = set()
    while pending:
        url = pending.pop()
        seen.add(url)
        response = get(page_client, url)
        assert response.status_code == 200, url
        assert response.mimetype == STATIC_TYPES[url[url.rindex(".") :]], url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if url.endswith(".js") and "/vendor/" not in url:  # follow our modules' imports
            folder = url.rsplit("/", 1)[0]
            imports = JS_IMPORT_RE.findall(response.get_data(as_text=True))
            pending += [f"{folder}/{name}" for name in imports if f"{folder}/{name}" not in seen]
    assert "/static/js/chart.js" in seen and "/static/vendor/uplot/uPlot.min.css" in seen


def test_vendored_uplot_is_the_version_its_notes_name(page_client):
    script = get(page_client, "/static/vendor/uplot/uPlot.iife.min.js").get_data(as_text=True)
    notes = get(page_client, "/static/vendor/uplot/VERSION").get_data(as_text=True)
    version = re.match(r"/\*! https://github.com/leeoniya/uPlot \(v([\d.]+)\) \*/", script)[1]
    assert notes.startswith(f"uPlot {version} ")
    assert "MIT" in get(page_client, "/static/vendor/uplot/LICENSE").get_data(as_text=True)


def test_missing_static_file_is_a_json_404(page_client):
    response = get(page_client, "/static/js/missing.js")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND"


def test_window_choices_are_the_windows_the_api_knows(page_client):
    assert page_elements(page_client).options["window"] == list(WINDOWS)


def test_operation_choices_are_the_operations_the_api_knows(page_client):
    # "": each metric's default; the percentiles are offered for value metrics only.
    assert page_elements(page_client).options["operation"] == ["", *OPERATIONS]


def test_key_status_is_announced_right_after_the_key_field(page_client):
    elements = page_elements(page_client)
    ids = list(elements.by_id)
    assert ids.index("key-status") == ids.index("forget-key") + 1  # below the key form
    assert elements.by_id["api-key"][1]["aria-describedby"] == "key-status"
    assert elements.by_id["key-status"][1]["role"] == "status"


def test_moved_choices_and_a_full_metric_list_are_announced(page_client):
    elements = page_elements(page_client).by_id
    for element_id in ("choice-note", "metrics-full", "chart-status"):
        assert elements[element_id][1]["role"] == "status", element_id
    assert "hidden" in elements["metrics-full"][1]


def test_tag_controls_start_disabled_and_are_announced(page_client):
    elements = page_elements(page_client)
    tag, attributes = elements.by_id["group-by"]
    assert tag == "select" and "disabled" in attributes  # until a metric's tags are read
    assert attributes["aria-describedby"] == "tags-hint"
    assert elements.options["group-by"] == [""]
    assert "disabled" in elements.by_id["add-filter"][1]
    assert elements.by_id["tags-hint"][1]["role"] == "status"
    assert elements.by_id["filter-rows"][0] == "ul"
