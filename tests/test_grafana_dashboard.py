"""docs/grafana-dashboard.json against a running server: each panel's query, its variables
filled in as Grafana fills them, answers 200, and what the Infinity data source makes of the
answer (its root selector — a plain path, or a JSONata expression — and its columns) gives
the rows the panel draws.

Infinity's backend parser reads a root selector as a path when one matches, else as JSONata
(jsonata-python here stands in for its Go implementation); with ``"format": "timeseries"`` it
turns rows of (time, group, value) into one series per group, which needs the rows in time
order.
"""

import json
import math
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import jsonata
import pytest

from app import config, create_app, shutdown
from app.db import get_store
from app.db.migrate import migrate
from tests.harness import ROOT, Gunicorn
from tests.helpers import check_log, new_key

DASHBOARD = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
HOSTS = [f"web-{number}" for number in range(1, 8)]  # 7 hosts: the top 5 and "other"
# The value metric's points: (minutes ago, values), each minute in a 5-minute bucket of its own;
# heavy-tailed, so that p99 is neither the largest value nor the average's neighbour.
LATENCIES = [(25, [*range(1, 100), 5000]), (15, [*range(10, 1000, 10), 9000]), (5, [7] * 100)]
PATH_RE = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")
VARIABLE_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn on a SQLite database of its own with a read key, the dashboard's default
    metric recorded with a host tag (web-N with N requests in each of the last few minutes) and
    its default value metric (LATENCIES)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('grafana') / 'grafana.sqlite3'}"
    with pytest.MonkeyPatch.context() as env:
        for name in config.VARIABLES:
            env.delenv(name, raising=False)
        app = create_app({"DATABASE_URL": url})
        migrate(get_store(app).write)
        writer, reader = new_key(app), new_key(app, scopes="read")
        shutdown(app)
        running = Gunicorn({"DATABASE_URL": url}).start()
    now = datetime.now(UTC)
    items = [
        {
            "name": variable("metric"),
            "type": "counter",
            "value": number,
            "tags": {"host": host},
            "recorded_at": (now - timedelta(minutes=minutes)).isoformat(),
        }
        for number, host in enumerate(HOSTS, start=1)
        for minutes in (25, 15, 5)
    ]
    items += [
        {
            "name": variable("value_metric"),
            "type": "value",
            "value": value,
            "recorded_at": (now - timedelta(minutes=minutes)).isoformat(),
        }
        for minutes, values in LATENCIES
        for value in values
    ]
    request = urllib.request.Request(
        running.base + "/api/metrics/batch",
        data=json.dumps({"metrics": items}).encode(),
        headers={"X-API-Key": writer, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["accepted"] == len(items)
    yield SimpleNamespace(base=running.base, key=reader, now=now)
    running.stop()
    check_log(running)
    running.cleanup()


def variable(name):
    """A dashboard variable's default value."""
    found = next(v for v in DASHBOARD["templating"]["list"] if v["name"] == name)
    return found.get("current", {}).get("value") or found["query"]


def fill(text, values):
    """Grafana's interpolation: $name and ${name} of the known variables; others stay."""

    def value(match):
        name = match[1] or match[2]
        return str(values[name]) if name in values else match[0]

    return VARIABLE_RE.sub(value, text)


def millis(moment):
    """Epoch milliseconds, as ${__from} and ${__to} give them."""
    return int(moment.timestamp() * 1000)


def targets():
    """(panel title, target) for every query of the dashboard."""
    panels = DASHBOARD["panels"]
    return [(panel["title"], target) for panel in panels for target in panel["targets"]]


def ask(server, target):
    """Run a target's query as Infinity does, the time picker on the last hour; the answer."""
    dashboard = {v["name"]: variable(v["name"]) for v in DASHBOARD["templating"]["list"]}
    values = {
        **dashboard,
        "__from": millis(server.now - timedelta(hours=1)),
        "__to": millis(server.now + timedelta(seconds=1)),
    }
    options = target["url_options"]
    assert options["method"] == "GET"
    query = urlencode([(p["key"], fill(p["value"], values)) for p in options["params"]])
    request = urllib.request.Request(
        f"{server.base}{target['url']}?{query}", headers={"X-API-Key": server.key}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def rows_of(target, body):
    """The rows Infinity's backend parser takes from ``body``: the root selector as a path,
    or else as JSONata; then each column by its selector."""
    root = target["root_selector"]
    if PATH_RE.fullmatch(root):
        found = body
        for step in root.split("."):
            found = found[step]
    else:
        found = jsonata.Jsonata(root).evaluate(body)
    rows = found if isinstance(found, list) else [found]
    return [{c["text"]: row[c["selector"]] for c in target["columns"]} for row in rows]


def check_types(target, rows):
    """Every cell parses as its column's type."""
    for row in rows:
        for column in target["columns"]:
            cell = row[column["text"]]
            if column["type"] == "timestamp":
                datetime.fromisoformat(cell)
            elif column["type"] == "number":
                assert cell is None or isinstance(cell, int | float), (column, cell)
            else:
                assert isinstance(cell, str), (column, cell)


@pytest.mark.parametrize(
    ("title", "target"), targets(), ids=[f"panel-{n}" for n, _ in enumerate(targets(), 1)]
)
def test_every_panel_query_answers_rows_of_its_columns(server, title, target):
    body = ask(server, target)
    assert body["success"] is True
    rows = rows_of(target, body)
    assert rows, title
    check_types(target, rows)
    names = {v["name"] for v in DASHBOARD["templating"]["list"]}
    if not PATH_RE.fullmatch(target["root_selector"]):  # JSONata's $names are not Grafana's
        used = {m[1] or m[2] for m in VARIABLE_RE.finditer(target["root_selector"])}
        assert not used & (names | {"__from", "__to", "__interval", "__range"}), used


def test_the_grouped_panel_draws_the_five_largest_hosts_and_other(server):
    panel = next(panel for panel in DASHBOARD["panels"] if "group_by" in str(panel))
    target = panel["targets"][0]
    assert target["format"] == "timeseries" and target["parser"] == "backend"
    assert panel["fieldConfig"]["defaults"]["displayName"] == "${__field.labels.group}"
    body = ask(server, target)
    assert body["group_by"] == [variable("group_by")] == ["host"]
    assert [group.get("tags") for group in body["series"]] == [
        *({"host": host} for host in reversed(HOSTS[2:])),
        None,
    ]
    rows = rows_of(target, body)
    times = [row["time"] for row in rows]
    assert times == sorted(times)  # Infinity's long-to-wide step refuses rows out of time order
    # One series per group (Infinity labels each by the string column), with the API's values.
    series = {}
    for row in rows:
        series.setdefault(row["group"], {})[row["time"]] = row["value"]
    expected = {
        ("other" if group.get("other") else f"host={group['tags']['host']}"): {
            point["timestamp"]: point["value"] for point in group["data"]
        }
        for group in body["series"]
    }
    assert series == expected
    assert list(expected) == [*(f"host={host}" for host in reversed(HOSTS[2:])), "other"]
    assert sum(v for v in series["other"].values()) == 3 * (1 + 2)  # web-1 and web-2
    assert sum(v for v in series["host=web-7"].values()) == 3 * 7


def nearest_rank(values, q):
    """The q-quantile of ``values`` by the nearest-rank rule: the ⌈q·n⌉-th smallest."""
    return sorted(values)[math.ceil(q * len(values)) - 1]


def test_the_p99_panel_draws_the_p99_the_api_answers_for_the_value_metric(server):
    panel = next(panel for panel in DASHBOARD["panels"] if "p99" in str(panel))
    [target] = panel["targets"]
    body = ask(server, target)
    assert (body["metric"], body["type"]) == (variable("value_metric"), "value")
    assert body["operation"] == "p99" and body["window"] == variable("window") == "5m"
    rows = rows_of(target, body)
    time_column, value_column = (column["text"] for column in target["columns"])
    drawn = {row[time_column]: row[value_column] for row in rows}
    # The API's exact answer for the same buckets (from the raw points) ...
    options = {p["key"]: p["value"] for p in target["url_options"]["params"]}
    exact = urllib.request.Request(
        f"{server.base}/api/query",
        data=json.dumps(
            {
                "metrics": [variable("value_metric")],
                "operation": options["operation"],
                "window": variable("window"),
                "start": body["start"],
                "end": body["end"],
                "source": "raw",
                "fill": "none",
            }
        ).encode(),
        headers={"X-API-Key": server.key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(exact, timeout=30) as response:
        raw = json.loads(response.read())
    # ... is each bucket's nearest-rank p99, and the panel draws it within 1 % (the sketches').
    expected = [nearest_rank(values, 0.99) for _, values in LATENCIES]
    assert [point["value"] for point in raw["data"]] == expected
    with_data = {time: value for time, value in drawn.items() if value is not None}
    assert list(with_data) == [point["timestamp"] for point in raw["data"]]
    assert list(with_data.values()) == pytest.approx(expected, rel=0.01)
