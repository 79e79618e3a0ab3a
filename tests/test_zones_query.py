"""Queries in a time zone and with compare, on both backends, against a recomputation from the
raw points with zoneinfo: the DST days of 2026 in Europe/Berlin and America/New_York (23 and 25
hours), a half-hour zone (Asia/Kolkata) and a 45-minute one (Asia/Kathmandu); answered from the
rollups (the default) and from raw points alone. Compare equals the same query over the earlier
range, also with group_by; an unknown zone is a 400 naming ``tz``."""

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.core.timeutil import isoformat_z, utcnow
from app.core.zones import compare_range
from app.db import get_store
from tests.helpers import new_key, post_hosted_values

pytestmark = pytest.mark.points

# (zone, local date whose day and hours are checked, the day's length in hours)
DAYS = [
    ("Europe/Berlin", datetime(2026, 3, 29), 23),
    ("Europe/Berlin", datetime(2026, 10, 25), 25),
    ("America/New_York", datetime(2026, 3, 8), 23),
    ("America/New_York", datetime(2026, 11, 1), 25),
    ("Asia/Kolkata", datetime(2026, 3, 29), 24),
    ("Asia/Kathmandu", datetime(2026, 10, 25), 24),
]
OPERATIONS = ["sum", "count", "avg", "min", "max"]
HOSTS = ["a", "b", "c"]


def local_midnight(tz, day):
    """The naive UTC instant of a local date's midnight (none of these zones skips one)."""
    return day.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def seed_points(rng, days):
    """(naive UTC time, value, host) around each day: a few a UTC hour, and points on hour,
    half-hour and 45-minute edges (±1 µs), where local buckets of these zones begin."""
    points = []
    for day in sorted({day for _, day, _ in days}):
        begin = day - timedelta(days=1)
        for hour in range(4 * 24):
            at = begin + timedelta(hours=hour)
            moments = [at + timedelta(seconds=rng.randrange(3600)) for _ in range(2)]
            minute = rng.choice([0, 15, 30, 45])
            edge = at + timedelta(minutes=minute, microseconds=rng.choice([-1, 0, 1]))
            for moment in [*moments, edge]:
                value = round(rng.uniform(-100, 100), rng.randrange(0, 3))
                points.append((moment, value, rng.choice(HOSTS)))
    return points


@pytest.fixture
def seeded(make_app):
    """An app keeping raw points and minute rollups for 400 days (March is within reach), an
    admin key (it may write that far back), and metric ``zoned`` over the DAYS."""
    app = make_app(METRICS_RETENTION_DAYS=400, METRICS_ROLLUP_MINUTE_DAYS=400)
    headers = {"X-API-Key": new_key(app, scopes="admin")}
    client = app.test_client()
    points = seed_points(random.Random(2026), DAYS)
    post_hosted_values(client, headers, "zoned", points)
    return app, client, headers, points


def local_label(tz, moment, window):
    """The bucket of a naive UTC instant read on the zone's clock: its start as the answer
    writes it (an hour at its offset, so the hour read twice is two buckets)."""
    local = moment.replace(tzinfo=UTC).astimezone(tz)
    if window == "1h":
        return local.replace(minute=0, second=0, microsecond=0).isoformat()
    midnight = local.replace(tzinfo=None).replace(hour=0, minute=0, second=0, microsecond=0)
    return local_midnight(tz, midnight).replace(tzinfo=UTC).astimezone(tz).isoformat()


def recompute(points, tz, window, start, end, operation, hosts=HOSTS):
    """{label: value} of the points in [start, end) by local bucket (empty buckets absent)."""
    buckets = {}
    for moment, value, host in points:
        if start <= moment < end and host in hosts:
            buckets.setdefault(local_label(tz, moment, window), []).append(value)
    return {label: aggregate(values, operation) for label, values in buckets.items()}


def aggregate(values, operation):
    if operation == "count":
        return len(values)
    if operation == "min":
        return min(values)
    if operation == "max":
        return max(values)
    total = sum(Decimal(repr(value)) for value in values)
    return total if operation == "sum" else total / len(values)


def agrees(answer, expected, operation):
    if expected is None or answer is None:
        return answer == expected
    if operation == "avg":
        return abs(Decimal(repr(answer)) - expected) <= abs(expected) * Decimal("1e-12")
    return Decimal(repr(answer)) == Decimal(expected) if operation == "sum" else answer == expected


def query(client, headers, name, start, end, **params):
    args = {"name": name, "start": isoformat_z(start), "end": isoformat_z(end), **params}
    response = client.get("/api/metrics/aggregate", query_string=args, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("source", ["auto", "raw"])
def test_local_days_and_hours_match_the_raw_points(seeded, source):
    app, client, headers, points = seeded
    for name, day, hours in DAYS:
        tz = ZoneInfo(name)
        start = local_midnight(tz, day - timedelta(days=1))
        end = local_midnight(tz, day + timedelta(days=2))
        if source == "auto":  # the rollups do answer these ranges
            planned = get_store(app).plan(start, end, 60, utcnow())
            assert planned.minute and not planned.raw
        for window in ("1h", "1d"):
            for operation in OPERATIONS:
                answer = query(client, headers, "zoned", start, end, window=window, tz=name,
                               operation=operation, source=source)  # fmt: skip
                expected = recompute(points, tz, window, start, end, operation)
                labels = [point["timestamp"] for point in answer["data"]]
                assert labels == sorted(labels, key=datetime.fromisoformat)
                if window == "1h":
                    assert len(labels) == 24 + hours + 24, (name, day)
                    assert len(set(labels)) == len(labels)
                else:
                    assert labels[1] == local_midnight(tz, day).replace(tzinfo=UTC).astimezone(
                        tz).isoformat()  # fmt: skip
                    assert len(labels) == 3
                    assert expected[labels[1]] == aggregate(
                        [v for t, v, _ in points if local_label(tz, t, "1d") == labels[1]],
                        operation,
                    )
                assert set(expected) <= set(labels), (name, window)
                for point in answer["data"]:
                    wanted = expected.get(point["timestamp"])
                    if wanted is None and operation in ("sum", "count"):
                        wanted = 0
                    assert agrees(point["value"], wanted, operation), (
                        name, window, operation, point, wanted)  # fmt: skip


def test_a_dst_day_is_23_or_25_hours_of_points(seeded):
    _, client, headers, points = seeded
    for name, day, hours in DAYS:
        tz = ZoneInfo(name)
        start, end = local_midnight(tz, day), local_midnight(tz, day + timedelta(days=1))
        assert (end - start) == timedelta(hours=hours)
        answer = query(client, headers, "zoned", start, end, window="1d", tz=name,
                       operation="count")  # fmt: skip
        assert answer["data"] == [
            {"timestamp": start.replace(tzinfo=UTC).astimezone(tz).isoformat(),
             "value": sum(1 for t, _, _ in points if start <= t < end)}
        ]  # fmt: skip


def test_half_and_three_quarter_hour_zones_shift_the_hours(seeded):
    _, client, headers, _ = seeded
    start = datetime(2026, 10, 25, 0, 0)
    for name, minute in (("Asia/Kolkata", 30), ("Asia/Kathmandu", 15)):
        answer = query(client, headers, "zoned", start, start + timedelta(hours=3), window="1h",
                       tz=name)  # fmt: skip
        first = datetime.fromisoformat(answer["data"][0]["timestamp"])
        assert first.minute == 0 and first.astimezone(UTC).minute == minute
        assert len(answer["data"]) == 4  # 00:00Z falls inside a local hour: 4 buckets cover 3h


def test_short_windows_keep_their_instants_with_the_local_offset(seeded):
    _, client, headers, _ = seeded
    start = datetime(2026, 3, 29, 0, 30)
    end = start + timedelta(hours=2)
    utc = query(client, headers, "zoned", start, end, window="15m")
    berlin = query(client, headers, "zoned", start, end, window="15m", tz="Europe/Berlin")
    assert [p["value"] for p in berlin["data"]] == [p["value"] for p in utc["data"]]
    assert [datetime.fromisoformat(p["timestamp"]) for p in berlin["data"]] == [
        datetime.fromisoformat(p["timestamp"]) for p in utc["data"]
    ]
    assert utc["data"][0]["timestamp"] == "2026-03-29T00:30:00Z"
    assert berlin["data"][0]["timestamp"] == "2026-03-29T01:30:00+01:00"
    assert berlin["data"][-1]["timestamp"] == "2026-03-29T04:15:00+02:00"


@pytest.mark.parametrize("bad", ["Nowhere/Land", "localtime", "America", "../etc/passwd", "utc"])
def test_an_unknown_zone_is_refused(client, auth, bad):
    for response in (
        client.get("/api/metrics/aggregate", query_string={"name": "x", "tz": bad}, headers=auth),
        client.get("/api/metrics/x", query_string={"tz": bad}, headers=auth),
        client.post("/api/query", json={"metrics": ["x"], "tz": bad}, headers=auth),
    ):
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert list(error["details"]) == ["tz"]


def test_a_bad_compare_is_refused(client, auth):
    response = client.get("/api/metrics/x", query_string={"compare": "2d"}, headers=auth)
    assert response.status_code == 400
    assert list(response.get_json()["error"]["details"]) == ["compare"]


@pytest.mark.parametrize(
    ("tz", "window", "compare"),
    [("Europe/Berlin", "1h", "1w"), ("America/New_York", "1d", "4w"), (None, "1h", "1d"),
     (None, "15m", "1w"), ("Asia/Kathmandu", "1h", "1d")],
)  # fmt: skip
def test_compare_is_the_same_query_over_the_earlier_range(seeded, tz, window, compare):
    _, client, headers, _ = seeded
    zone = ZoneInfo(tz) if tz else None
    # Berlin's 1 November against 25 October: a 24-hour day beside a 25-hour one.
    start = datetime(2026, 10, 31, 23) if tz == "Europe/Berlin" else datetime(2026, 11, 1, 4)
    end = start + (timedelta(hours=3) if window == "15m" else timedelta(days=1))
    if window == "1d":  # two days of New York against 31 October and 1 November (25 hours)
        start, end = datetime(2026, 11, 28, 5), datetime(2026, 11, 30, 5)
        post_hosted_values(client, headers, "zoned", [(start, 1.5, "a")])
    extra = {"tz": tz} if tz else {}
    answer = query(client, headers, "zoned", start, end, window=window, compare=compare, **extra)
    earlier_start, earlier_end = compare_range(start, end, compare, zone)
    earlier = query(client, headers, "zoned", earlier_start, earlier_end, window=window, **extra)
    assert answer["compare"] == {"offset": compare, "data": earlier["data"]}
    assert earlier["data"] != answer["data"]
    if tz == "Europe/Berlin":
        assert len(answer["data"]) == 24 and len(answer["compare"]["data"]) == 25
        assert answer["compare"]["data"][0]["timestamp"] == "2026-10-25T00:00:00+02:00"
    if tz is None:
        assert answer["compare"]["data"][0]["timestamp"].endswith("Z")


def test_compare_beside_each_group_and_name(seeded):
    _, client, headers, points = seeded
    tz, start = "Europe/Berlin", datetime(2026, 10, 31, 23)
    end = start + timedelta(days=1)
    earlier = compare_range(start, end, "1w", ZoneInfo(tz))
    answer = query(client, headers, "zoned", start, end, window="1h", tz=tz, compare="1w",
                   group_by="host", top=2, operation="sum")  # fmt: skip
    groups = answer["series"]
    assert [group.get("other", False) for group in groups] == [False, False, True]
    kept = [group["tags"]["host"] for group in groups[:2]]
    for group in groups:
        hosts = [group["tags"]["host"]] if group["tags"] else sorted(set(HOSTS) - set(kept))
        filters = [f"host={host}" for host in hosts] if len(hosts) == 1 else [
            f"host!={host}" for host in kept]  # fmt: skip
        alone = query(client, headers, "zoned", *earlier, window="1h", tz=tz, filter=filters,
                      operation="sum")  # fmt: skip
        assert group["compare"] == {"offset": "1w", "data": alone["data"]}
        expected = recompute(points, ZoneInfo(tz), "1h", *earlier, "sum", hosts)
        assert {p["timestamp"]: p["value"] for p in alone["data"] if p["value"]} == {
            label: int(v) if v == v.to_integral_value() else float(v)
            for label, v in expected.items() if v
        }  # fmt: skip
    # Several names: compare beside data, by name; the POST query says the same.
    post_hosted_values(client, headers, "zoned.two", [(start + timedelta(hours=1), 2.0, "a")])
    both = query(client, headers, "zoned,zoned.two", start, end, window="1d", tz=tz, compare="1d")
    assert set(both["data"]) == set(both["compare"]["data"]) == {"zoned", "zoned.two"}
    assert both["compare"]["data"]["zoned"][0]["timestamp"] == "2026-10-31T00:00:00+01:00"
    body = {"metrics": ["zoned", "zoned.two"], "start": isoformat_z(start),
            "end": isoformat_z(end), "window": "1d", "tz": tz, "compare": "1d"}  # fmt: skip
    posted = client.post("/api/query", json=body, headers=headers)
    assert posted.status_code == 200 and posted.get_json() == both


def test_csv_with_a_zone_and_compare(seeded):
    _, client, headers, _ = seeded
    start = datetime(2026, 10, 24, 22)
    args = {"name": "zoned", "start": isoformat_z(start),
            "end": isoformat_z(start + timedelta(hours=25)), "window": "1h",
            "tz": "Europe/Berlin", "compare": "1d", "operation": "count",
            "format": "csv"}  # fmt: skip
    answer = client.get("/api/metrics/aggregate", query_string=args, headers=headers)
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["timestamp", "value", "value (compare 1d)"]
    stamps = [row[0] for row in rows[1:]]
    assert stamps == sorted(stamps, key=datetime.fromisoformat)
    assert "2026-10-25T02:00:00+02:00" in stamps and "2026-10-25T02:00:00+01:00" in stamps
    assert len(rows) - 1 == 25 + 24  # the 25 hours of 25 October, the 24 of the day before
    json_answer = client.get(
        "/api/metrics/aggregate", query_string={**args, "format": "json"}, headers=headers
    ).get_json()
    by_stamp = {row[0]: row for row in rows[1:]}
    for point in json_answer["data"]:
        assert by_stamp[point["timestamp"]][1] == str(point["value"])
    for point in json_answer["compare"]["data"]:
        assert by_stamp[point["timestamp"]][2] == str(point["value"])


def test_zones_and_compare_count_against_the_bucket_limit(make_app):
    app = make_app(METRICS_MAX_BUCKETS=48)
    client, headers = app.test_client(), {"X-API-Key": new_key(app)}
    start = datetime(2026, 10, 24, 22)
    args = {"name": "x", "start": isoformat_z(start), "window": "1h", "tz": "Europe/Berlin"}
    over = {**args, "end": isoformat_z(start + timedelta(hours=49))}  # 49 local hours
    response = client.get("/api/metrics/aggregate", query_string=over, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "QUERY_TOO_LARGE"
    twice = {**args, "end": isoformat_z(start + timedelta(hours=25)), "compare": "1d"}
    response = client.get("/api/metrics/aggregate", query_string=twice, headers=headers)
    assert response.get_json()["error"]["code"] == "QUERY_TOO_LARGE"  # 25 + 24 buckets
    response = client.get(
        "/api/metrics/aggregate", query_string={**twice, "compare": ""}, headers=headers
    )
    assert response.status_code == 404  # 25 buckets fit: the metric is missing
