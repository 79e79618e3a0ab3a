"""The group-commit writer against the real databases: grouping, isolation, bounds, shutdown."""

import os
import threading
import time

import pytest
from sqlalchemy import text

from app.core.timeutil import utcnow
from app.core.writes import Answer, Point, WriteRequest
from app.db import get_store
from app.ingest.front_door import get_front_door
from app.ingest.group_commit import GroupWriter, WriterUnavailable
from tests.helpers import stored_points

pytestmark = pytest.mark.points


def counter(name, value=1.0):
    return Point(name, "counter", value, utcnow())


def ok(result):
    return Answer(201 if result.written else 409, {"written": len(result.written)})


class Commits:
    """An observer counting commits and the requests in each."""

    def __init__(self):
        self.sizes = []

    def __call__(self, requests, answers, seconds):
        self.sizes.append(len(requests))


def start_together(writer, requests):
    """Submit each request from its own thread, released together: (threads, outcomes), the
    outcomes filling in with answers or exceptions."""
    barrier = threading.Barrier(len(requests))
    outcomes = [None] * len(requests)

    def run(i):
        barrier.wait()
        try:
            outcomes[i] = writer.submit(requests[i])
        except Exception as exc:  # the test inspects what each request got
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    return threads, outcomes


def submit_together(writer, requests):
    """start_together, then wait for every outcome."""
    threads, outcomes = start_together(writer, requests)
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.fixture
def make_writer(app):
    writers = []

    def build(**options):
        writer = GroupWriter(get_store(app), **options)
        writers.append(writer)
        return writer

    yield build
    for writer in writers:
        writer.close()


def test_concurrent_requests_share_commits(app, make_writer):
    commits = Commits()
    writer = make_writer(linger_ms=20, observer=commits)
    requests = [WriteRequest([counter("grouped", i)], ok) for i in range(32)]
    answers = submit_together(writer, requests)
    assert [a.status for a in answers] == [201] * 32
    assert sum(commits.sizes) == 32 and len(commits.sizes) < 32
    assert sorted(v for _, v in stored_points(app, "grouped")) == [float(i) for i in range(32)]


def test_a_lone_request_does_not_wait_for_the_linger(app, make_writer):
    writer = make_writer(linger_ms=20_000)
    started = time.monotonic()
    assert writer.submit(WriteRequest([counter("lone")], ok)).status == 201
    assert time.monotonic() - started < 10  # far below the 20 s linger
    assert len(stored_points(app, "lone")) == 1


def test_a_type_clash_fails_only_its_own_request(app, make_writer):
    writer = make_writer(linger_ms=50)
    clash = Point("clash", "value", 2.0, utcnow())
    requests = [WriteRequest([counter("clash")], ok)] * 4 + [WriteRequest([clash], ok)]
    answers = submit_together(writer, requests)
    statuses = sorted(a.status for a in answers)
    assert statuses in ([201, 201, 201, 201, 409], [201, 409, 409, 409, 409])
    assert len(stored_points(app, "clash")) == statuses.count(201)


def test_a_fault_in_one_request_does_not_fail_its_neighbours(app, make_writer):
    def broken(result):
        raise RuntimeError("a bug in this request's answer")

    writer = make_writer(linger_ms=50)
    requests = [WriteRequest([counter("healthy")], ok) for _ in range(6)]
    requests.append(WriteRequest([counter("broken")], broken))
    outcomes = submit_together(writer, requests)
    assert [getattr(o, "status", None) for o in outcomes[:6]] == [201] * 6
    assert isinstance(outcomes[6], RuntimeError)
    assert len(stored_points(app, "healthy")) == 6
    assert stored_points(app, "broken") == []


@pytest.fixture
def write_lock(app, database_url):
    """Hold the locks the writer needs (the metric rows, or SQLite's write lock) until released."""
    conn = get_store(app).write.connect()
    conn.begin()  # on SQLite: BEGIN IMMEDIATE, the database's write lock
    if not database_url.startswith("sqlite"):
        conn.execute(text("SELECT id FROM metrics FOR UPDATE"))
    yield conn.rollback
    conn.close()


def test_a_full_queue_makes_requests_wait_then_refuses_them(app, make_writer, request):
    writer = make_writer(queue_limit=2, wait_seconds=1, linger_ms=0)
    assert writer.submit(WriteRequest([counter("held")], ok)).status == 201
    release = request.getfixturevalue("write_lock")
    threads, outcomes = start_together(writer, [WriteRequest([counter("held")], ok)] * 6)
    deadline = time.monotonic() + 30
    while sum(isinstance(o, WriterUnavailable) for o in outcomes) < 3:
        assert time.monotonic() < deadline, outcomes
        time.sleep(0.05)
    release()
    for thread in threads:
        thread.join(60)
    refused = [o for o in outcomes if isinstance(o, WriterUnavailable)]
    answered = [o for o in outcomes if isinstance(o, Answer)]
    assert len(refused) + len(answered) == 6
    assert len(stored_points(app, "held")) == 1 + len(answered)


def test_close_commits_what_is_waiting(app, make_writer, request):
    writer = make_writer(linger_ms=0)
    assert writer.submit(WriteRequest([counter("closing")], ok)).status == 201
    release = request.getfixturevalue("write_lock")  # the next group waits on this lock
    threads, outcomes = start_together(writer, [WriteRequest([counter("closing")], ok)] * 8)
    deadline = time.monotonic() + 30
    while writer.backlog < 8:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    closing = threading.Thread(target=writer.close)
    closing.start()
    release()
    closing.join(30)
    for thread in threads:
        thread.join(30)
    assert [o.status for o in outcomes] == [201] * 8
    assert len(stored_points(app, "closing")) == 9
    with pytest.raises(WriterUnavailable):
        writer.submit(WriteRequest([counter("closing")], ok))


@pytest.mark.not_on_clickhouse("the in-process engine serves one process: no forked child")
def test_a_forked_child_gets_its_own_writer(app):
    db, front = get_store(app), get_front_door(app)
    parent_writer = front.writer()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: as gunicorn's post_worker_init, forget the parent's connections
        try:
            db.dispose(close=False)
            child = front.writer()
            status = child.submit(WriteRequest([counter("forked")], ok)).status
            os.write(write, b"new" if child is not parent_writer and status == 201 else b"old")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 3) == b"new"
    assert front.writer() is parent_writer
    assert len(stored_points(app, "forked")) == 1
