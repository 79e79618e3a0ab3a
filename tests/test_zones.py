"""Buckets in a time zone and the ranges of compare (app/core/zones.py), against a recomputation
that reads the local clock once a minute, and against today's UTC epoch buckets."""

import importlib.resources
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.buckets import bucket_range
from app.core.constants import WINDOWS
from app.core.timeutil import EPOCH, isoformat_z
from app.core.zones import (
    DAY,
    HOUR,
    Bucketing,
    UnknownZone,
    bucket_indexes,
    compare_range,
    shift_back,
    zone,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Days on which a zone's clock changes in an interesting way, and plain days in odd offsets.
CLOCK_CHANGES = [
    ("Europe/Berlin", datetime(2026, 3, 29)),  # 02:00 → 03:00: 23 hours
    ("Europe/Berlin", datetime(2026, 10, 25)),  # 03:00 → 02:00: 25 hours
    ("America/New_York", datetime(2026, 3, 8)),
    ("America/New_York", datetime(2026, 11, 1)),
    ("Asia/Kolkata", datetime(2026, 3, 29)),  # +05:30 all year
    ("Asia/Kathmandu", datetime(2026, 10, 25)),  # +05:45 all year
    ("Asia/Kathmandu", datetime(1986, 1, 1)),  # +05:30 → +05:45 at midnight
    ("Australia/Lord_Howe", datetime(2026, 4, 5)),  # DST of half an hour
    ("Australia/Lord_Howe", datetime(2026, 10, 4)),
    ("America/Havana", datetime(2026, 3, 8)),  # midnight skipped
    ("America/Havana", datetime(2026, 11, 1)),  # midnight read twice
    ("America/Santiago", datetime(2026, 4, 5)),  # back from 24:00 to 23:00
    ("America/Goose_Bay", datetime(2006, 10, 29)),  # back from 00:01 to 23:01
    ("Pacific/Apia", datetime(2011, 12, 30)),  # a date that never happened there
]
ZONES = sorted({name for name, _ in CLOCK_CHANGES})


def utc(*fields):
    return datetime(*fields)


def clock_edges(tz, window, start, end):
    """The edges from the local clock read once a minute (every offset and change of these zones
    falls on a minute): an hour starts where (date, hour, offset) changes, a day at the first
    reading of a later date."""
    step, margin = timedelta(minutes=1), timedelta(seconds=2 * window + HOUR)
    minute = start.replace(second=0, microsecond=0) - margin
    starts, hour, latest_date = [], None, None
    while minute <= end + margin:
        local = minute.replace(tzinfo=UTC).astimezone(tz)
        if window == HOUR and (local.date(), local.hour, local.utcoffset()) != hour:
            starts.append(minute)
        if window == DAY and (latest_date is None or local.date() > latest_date):
            starts.append(minute)
        hour = (local.date(), local.hour, local.utcoffset())
        latest_date = max(local.date(), latest_date or local.date())
        minute += step
    opening = max(edge for edge in starts if edge <= start)
    closing = min(edge for edge in starts if edge >= end)
    return [opening, *(edge for edge in starts if start < edge < end), closing]


def epoch_edges(window, start, end):
    first, last = bucket_range(start, end, window)
    return [EPOCH + timedelta(seconds=index * window) for index in range(first, last + 2)]


def test_zone_accepts_iana_names_and_utc():
    assert zone("UTC").key == "UTC"
    assert zone("Europe/Berlin").utcoffset(datetime(2026, 7, 1)) == timedelta(hours=2)


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "",
        "America",
        "../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "localtime",
        "Europe/Berlin\x00",
        "Europe/Berlin ",
        "x" * 300,
        None,
        3600,
    ],
)
def test_an_unknown_zone_is_a_value_error_naming_it(name):
    with pytest.raises(UnknownZone, match="unknown time zone") as raised:
        zone(name)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("name", "day", "hours", "label"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29), 23, "2026-03-29T00:00:00+01:00"),
        ("Europe/Berlin", datetime(2026, 10, 25), 25, "2026-10-25T00:00:00+02:00"),
        ("America/New_York", datetime(2026, 3, 8), 23, "2026-03-08T00:00:00-05:00"),
        ("America/New_York", datetime(2026, 11, 1), 25, "2026-11-01T00:00:00-04:00"),
        ("Asia/Kolkata", datetime(2026, 3, 29), 24, "2026-03-29T00:00:00+05:30"),
        ("Asia/Kathmandu", datetime(2026, 3, 29), 24, "2026-03-29T00:00:00+05:45"),
    ],
)
def test_a_day_starts_at_local_midnight_and_lasts_as_long_as_the_clock_says(
    name, day, hours, label
):
    days = Bucketing(DAY, zone(name))
    midnight = day.replace(tzinfo=zone(name)).astimezone(UTC).replace(tzinfo=None)
    edges = days.edges(midnight + timedelta(hours=5), midnight + timedelta(hours=6))
    assert edges == [midnight, midnight + timedelta(hours=hours)]
    assert days.label(edges[0]) == label
    assert days.label(edges[1])[10:19] == "T00:00:00"


def test_the_hour_repeated_in_autumn_is_a_bucket_of_its_own():
    hours = Bucketing(HOUR, zone("Europe/Berlin"))
    edges = hours.edges(utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 1))
    assert [hours.label(edge) for edge in edges] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]
    assert edges[0] == utc(2026, 10, 24, 23)
    spring = hours.edges(utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))
    assert [hours.label(edge) for edge in spring] == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


@pytest.mark.parametrize(
    ("name", "first", "label"),
    [
        ("Asia/Kolkata", utc(2026, 3, 28, 23, 30), "2026-03-29T05:00:00+05:30"),
        ("Asia/Kathmandu", utc(2026, 3, 28, 23, 15), "2026-03-29T05:00:00+05:45"),
    ],
)
def test_hours_in_half_and_quarter_hour_zones_start_at_local_hours(name, first, label):
    hours = Bucketing(HOUR, zone(name))
    edges = hours.edges(utc(2026, 3, 29), utc(2026, 3, 29, 3))
    assert edges == [first + timedelta(hours=index) for index in range(5)]
    assert hours.label(edges[0]) == label
    assert hours.base_slot_seconds(edges) == 60


@pytest.mark.parametrize(("name", "day"), CLOCK_CHANGES)
@pytest.mark.parametrize("window", [HOUR, DAY])
def test_local_edges_equal_the_clock_read_every_minute(name, day, window):
    tz = zone(name)
    start, end = day - timedelta(hours=13, minutes=7), day + timedelta(days=1, hours=19)
    assert Bucketing(window, tz).edges(start, end) == clock_edges(tz, window, start, end)


@FAST
@given(
    case=st.sampled_from(CLOCK_CHANGES),
    window=st.sampled_from([HOUR, DAY]),
    before=st.integers(-40 * HOUR, 20 * HOUR),
    span=st.integers(1, 3 * DAY),
    micro=st.integers(0, 999_999),
)
def test_local_edges_equal_the_clock_for_any_range(case, window, before, span, micro):
    name, day = case
    tz = zone(name)
    start = day + timedelta(seconds=before, microseconds=micro)
    end = start + timedelta(seconds=span)
    buckets = Bucketing(window, tz)
    edges = buckets.edges(start, end)
    assert edges == clock_edges(tz, window, start, end)
    assert edges[0] <= start < edges[1] and edges[-2] < end <= edges[-1]
    assert buckets.count(start, end) == len(edges) - 1
    # A local day is a run of whole local hours.
    assert set(Bucketing(DAY, tz).edges(start, end)) <= set(
        Bucketing(HOUR, tz).edges(start - timedelta(days=2), end + timedelta(days=2))
    )


@pytest.mark.parametrize("name", ZONES)
@pytest.mark.parametrize("window", [60, 300, 900])
def test_shorter_windows_in_a_zone_are_the_utc_instants_labelled_locally(name, window):
    start, end = utc(2026, 3, 28, 22, 7, 30), utc(2026, 3, 29, 3, 1)
    local, plain = Bucketing(window, zone(name)), Bucketing(window)
    assert local.edges(start, end) == plain.edges(start, end)
    assert local.count(start, end) == plain.count(start, end)
    edge = plain.edges(start, end)[0]
    assert local.label(edge) == edge.replace(tzinfo=UTC).astimezone(zone(name)).isoformat()
    assert local.base_slot_seconds(local.edges(start, end)) == window


def test_quarter_hours_in_kathmandu_are_labelled_with_its_offset():
    quarters = Bucketing(900, zone("Asia/Kathmandu"))
    assert quarters.label(utc(2026, 3, 29)) == "2026-03-29T05:45:00+05:45"


@FAST
@given(
    window=st.sampled_from(sorted(WINDOWS.values())),
    start=st.datetimes(min_value=utc(1970, 1, 1), max_value=utc(9990, 1, 1)),
    span=st.integers(1, 3000),
    micro=st.integers(0, 999_999),
)
def test_without_a_zone_the_edges_are_todays_epoch_buckets(window, start, span, micro):
    end = start + timedelta(seconds=span * window // 7, microseconds=micro + 1)
    buckets = Bucketing(window)
    edges = buckets.edges(start, end)
    assert edges == epoch_edges(window, start, end)
    assert buckets.count(start, end) == len(edges) - 1
    assert [buckets.label(edge) for edge in edges[:3]] == [isoformat_z(e) for e in edges[:3]]
    assert buckets.base_slot_seconds(edges) == window


@FAST
@given(
    name=st.sampled_from([*ZONES, "UTC", None]),
    window=st.sampled_from(sorted(WINDOWS.values())),
    start=st.datetimes(min_value=utc(1970, 1, 2), max_value=utc(2100, 1, 1)),
    buckets=st.integers(1, 800),
    seconds=st.integers(0, 86399),
)
def test_count_equals_the_edges_it_counts(name, window, start, buckets, seconds):
    end = start + timedelta(seconds=buckets * window + seconds)
    bucketing = Bucketing(window, None if name is None else zone(name))
    assert bucketing.count(start, end) == len(bucketing.edges(start, end)) - 1


def test_hours_in_a_whole_hour_zone_are_utc_hours_over_decades():
    start, end = utc(1971, 5, 3, 4, 5), utc(2019, 1, 1)
    berlin = Bucketing(HOUR, zone("Europe/Berlin"))
    assert berlin.count(start, end) == Bucketing(HOUR).count(start, end)
    year = berlin.edges(utc(2026, 1, 1), utc(2027, 1, 1))
    assert year == epoch_edges(HOUR, utc(2026, 1, 1), utc(2027, 1, 1))
    assert berlin.base_slot_seconds(year) == HOUR


def test_count_of_an_absurd_range_is_immediate_and_huge():
    hours = Bucketing(HOUR, zone("Australia/Lord_Howe"))
    assert hours.count(utc(1970, 1, 1), utc(9999, 1, 1)) > 70_000_000
    assert Bucketing(60, zone("Europe/Berlin")).count(utc(1970, 1, 1), utc(9999, 1, 1)) == (
        Bucketing(60).count(utc(1970, 1, 1), utc(9999, 1, 1))
    )


@pytest.mark.parametrize(
    ("name", "window", "start", "grain"),
    [
        ("Europe/Berlin", DAY, utc(2026, 3, 1), HOUR),
        ("America/New_York", HOUR, utc(2026, 3, 1), HOUR),
        ("UTC", DAY, utc(2026, 3, 1), DAY),
        ("Asia/Kolkata", DAY, utc(2026, 3, 1), 60),
        ("Asia/Kathmandu", DAY, utc(2026, 3, 1), 60),
        ("Australia/Lord_Howe", HOUR, utc(2026, 3, 1), 60),
        ("Africa/Monrovia", HOUR, utc(1971, 6, 1), 1),  # -00:44:30 until 1972: raw points only
        (None, DAY, utc(2026, 3, 1), DAY),
    ],
)
def test_base_slot_is_the_coarsest_rollup_grain_on_every_edge(name, window, start, grain):
    buckets = Bucketing(window, None if name is None else zone(name))
    assert buckets.base_slot_seconds(buckets.edges(start, start + timedelta(days=60))) == grain


def test_base_slots_map_to_the_bucket_holding_them():
    days = Bucketing(DAY, zone("Europe/Berlin"))
    edges = days.edges(utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
    slots = [utc(2026, 3, 27, 22) + timedelta(hours=hour) for hour in range(75)]
    indexes = bucket_indexes(edges, slots)
    assert [indexes.count(index) for index in range(3)] == [24, 23, 24]
    assert indexes[:2] == [None, 0] and indexes[-4:] == [2, None, None, None]


@pytest.mark.parametrize(
    ("compare", "moment", "earlier", "label"),
    [
        # The day after the 23-hour day: its midnight moves back 23 hours, to a midnight.
        ("1d", utc(2026, 3, 29, 22), utc(2026, 3, 28, 23), "2026-03-29T00:00:00+01:00"),
        ("1d", utc(2026, 10, 25, 23), utc(2026, 10, 24, 22), "2026-10-25T00:00:00+02:00"),
        ("1w", utc(2026, 3, 31, 22), utc(2026, 3, 24, 23), "2026-03-25T00:00:00+01:00"),
        ("4w", utc(2026, 4, 20, 22), utc(2026, 3, 23, 23), "2026-03-24T00:00:00+01:00"),
        # 02:30 did not happen on 29 March: the first instant after the gap.
        ("1w", utc(2026, 4, 5, 0, 30), utc(2026, 3, 29, 1), "2026-03-29T03:00:00+02:00"),
    ],
)
def test_compare_in_a_zone_moves_back_local_calendar_days(compare, moment, earlier, label):
    berlin = zone("Europe/Berlin")
    assert shift_back(moment, compare, berlin) == earlier
    assert Bucketing(HOUR, berlin).label(earlier) == label


def test_compare_of_a_day_range_across_dst_keeps_local_midnights():
    berlin = zone("Europe/Berlin")
    days = Bucketing(DAY, berlin)
    start, end = utc(2026, 3, 29, 22), utc(2026, 4, 2, 22)  # 30 March to 3 April, Berlin
    earlier = compare_range(start, end, "1d", berlin)
    assert earlier == (utc(2026, 3, 28, 23), utc(2026, 4, 1, 22))
    labels = [days.label(edge) for edge in days.edges(*earlier)]
    assert all(label[10:19] == "T00:00:00" for label in labels)
    assert labels[0] == "2026-03-29T00:00:00+01:00" and len(labels) == 5


@FAST
@given(
    moment=st.datetimes(min_value=utc(1970, 2, 1), max_value=utc(9998, 1, 1)),
    compare=st.sampled_from(["1d", "1w", "4w"]),
)
def test_compare_without_a_zone_is_whole_24_hour_days(moment, compare):
    days = {"1d": 1, "1w": 7, "4w": 28}[compare]
    assert shift_back(moment, compare) == moment - timedelta(hours=24 * days)
    start, end = compare_range(moment, moment + timedelta(hours=5), compare)
    assert (moment - start, end - start) == (timedelta(days=days), timedelta(hours=5))


@FAST
@given(
    name=st.sampled_from(ZONES),
    moment=st.datetimes(min_value=utc(1970, 2, 1), max_value=utc(2060, 1, 1)),
    compare=st.sampled_from(["1d", "1w", "4w"]),
)
def test_compare_in_a_zone_keeps_the_wall_clock_reading(name, moment, compare):
    tz, days = zone(name), {"1d": 1, "1w": 7, "4w": 28}[compare]
    wall = moment.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None) - timedelta(days=days)
    earlier = shift_back(moment, compare, tz)
    reading = earlier.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    if reading != wall:  # a reading the clock skipped: the first instant after the skip
        second_before = (earlier - timedelta(seconds=1)).replace(tzinfo=UTC).astimezone(tz)
        assert second_before.replace(tzinfo=None) < wall < reading


def test_compare_refuses_other_offsets():
    with pytest.raises(ValueError, match="1d, 1w, 4w"):
        shift_back(utc(2026, 1, 1), "2w")


@pytest.fixture
def tzdata_only():
    """zoneinfo with no system zone files, as on a machine without them: the tzdata package."""
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    yield
    zoneinfo.reset_tzpath()
    zoneinfo.ZoneInfo.clear_cache()


def test_zones_work_from_the_tzdata_package_alone(tzdata_only):
    assert zoneinfo.TZPATH == ()
    days = Bucketing(DAY, zone("Europe/Berlin"))
    edges = days.edges(utc(2026, 3, 29), utc(2026, 3, 30))
    assert edges == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), utc(2026, 3, 30, 22)]
    with pytest.raises(UnknownZone):
        zone("Mars/Olympus_Mons")
    resource = importlib.resources.files("tzdata").joinpath("zoneinfo", "America", "New_York")
    with resource.open("rb") as data:
        packaged = zoneinfo.ZoneInfo.from_file(data, key="America/New_York")
    start, end = utc(2026, 3, 7, 1, 2, 3), utc(2026, 3, 9, 4, 5, 6)
    assert Bucketing(HOUR, packaged).edges(start, end) == clock_edges(packaged, HOUR, start, end)
