"""What Grafana and spreadsheets ask for: start/end in epoch milliseconds, and CSV from both
query routes with the same buckets and values as JSON."""

from datetime import timedelta

import pytest

from app.core.timeutil import EPOCH, isoformat_z, utcnow

pytestmark = pytest.mark.points

COUNTER = "/api/metrics/counter"


def hour_ago():
    return (utcnow() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def millis(moment):
    return int((moment - EPOCH).total_seconds() * 1000)


def post(client, auth, name, kind, at, value):
    body = {"name": name, "value": value, "recorded_at": isoformat_z(at)}
    assert client.post(f"/api/metrics/{kind}", json=body, headers=auth).status_code == 201


def test_start_and_end_may_be_epoch_milliseconds(client, auth):
    start = hour_ago()
    post(client, auth, "ms", "counter", start + timedelta(minutes=5), 3)
    params = {
        "name": "ms",
        "window": "1h",
        "start": millis(start),
        "end": millis(start + timedelta(hours=1)),
    }
    body = client.get("/api/metrics/aggregate", query_string=params, headers=auth).get_json()
    assert body["start"] == isoformat_z(start) and body["data"] == [
        {"timestamp": isoformat_z(start), "value": 3}
    ]
    seconds = {
        **params,
        "start": millis(start) // 1000,
        "end": millis(start + timedelta(hours=1)) // 1000,
    }
    assert (
        client.get("/api/metrics/aggregate", query_string=seconds, headers=auth).get_json()["data"]
        == body["data"]
    )


def test_csv_has_the_json_buckets_and_values(client, auth):
    start = hour_ago()
    post(client, auth, "csv.a", "value", start + timedelta(minutes=1), 1.5)
    post(client, auth, "csv.b", "counter", start + timedelta(minutes=16), 2)
    span = {
        "start": isoformat_z(start),
        "end": isoformat_z(start + timedelta(minutes=30)),
        "window": "15m",
    }
    one = client.get("/api/metrics/csv.a", query_string={**span, "format": "csv"}, headers=auth)
    assert one.status_code == 200 and one.mimetype == "text/csv"
    assert one.headers["X-Resolution"] == "raw"
    later = isoformat_z(start + timedelta(minutes=15))
    assert (
        one.get_data(as_text=True) == f"timestamp,value\r\n{isoformat_z(start)},1.5\r\n{later},\r\n"
    )
    both = client.get(
        "/api/metrics/aggregate",
        query_string={**span, "name": "csv.a,csv.b", "format": "CSV"},
        headers=auth,
    )
    assert both.get_data(as_text=True).splitlines() == [
        "timestamp,csv.a,csv.b",
        f"{isoformat_z(start)},1.5,0",
        f"{isoformat_z(start + timedelta(minutes=15))},,2",
    ]
    bad = client.get("/api/metrics/csv.a", query_string={**span, "format": "xml"}, headers=auth)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "VALIDATION_ERROR"
