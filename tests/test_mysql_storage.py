"""What only the MySQL schema does: daily partitions, binary names, UTC sessions."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.db import get_store, partitions


def test_points_table_has_daily_partitions_a_week_ahead(mysql_app):
    with get_store(mysql_app).write.connect() as conn:
        names = partitions.existing(conn)
    today = datetime.now(UTC).date()
    for offset in range(0, 8):
        assert partitions.partition_name(today + timedelta(days=offset)) in names
    assert "p_future" in names


def test_ensure_daily_adds_only_the_missing_days(mysql_app):
    engine = get_store(mysql_app).write
    with engine.connect() as conn:
        before = partitions.existing(conn)
        newest = max(partitions.day_of(name) for name in before if name[1:].isdigit())
        added = partitions.ensure_daily(
            conn, newest - timedelta(days=3), newest + timedelta(days=2)
        )
        after = partitions.existing(conn)
        again = partitions.ensure_daily(conn, newest, newest + timedelta(days=2))
    expected = {partitions.partition_name(newest + timedelta(days=d)) for d in (1, 2)}
    assert set(added["created"]) == expected and after - before == expected
    assert again == {"created": [], "future_rows": False}


def test_sessions_run_in_utc(mysql_app):
    with get_store(mysql_app).write.connect() as conn:
        assert conn.execute(text("SELECT @@session.time_zone")).scalar() == "+00:00"


def test_names_differing_only_in_case_are_two_rows(mysql_app):
    engine = get_store(mysql_app).write
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM metrics"))
        for name in ("Api.Hits", "api.hits", "API.HITS"):
            conn.execute(
                text(
                    "INSERT INTO metrics (name, type, created_at, updated_at) "
                    "VALUES (:n, 'counter', NOW(6), NOW(6))"
                ),
                {"n": name},
            )
        found = conn.execute(text("SELECT name FROM metrics WHERE name = 'api.hits'")).scalars()
        assert list(found) == ["api.hits"]
