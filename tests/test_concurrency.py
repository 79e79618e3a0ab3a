"""Several servers creating the same new metric at once end with one metric and every point."""

import threading

from tests.helpers import new_key, stored_metric, stored_points

THREADS = 8


def race(apps, bodies, path_for):
    """POST bodies[i] to apps[i] from one thread each, all released together; statuses."""
    barrier = threading.Barrier(len(apps))
    statuses = [None] * len(apps)
    key = new_key(apps[0])

    def run(i):
        client = apps[i].test_client()
        barrier.wait()
        response = client.post(path_for(bodies[i]), json=bodies[i], headers={"X-API-Key": key})
        statuses[i] = response.status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def test_eight_servers_create_one_metric_together(make_app):
    apps = [make_app() for _ in range(THREADS)]
    bodies = [{"name": "race.new", "value": i} for i in range(THREADS)]
    statuses = race(apps, bodies, lambda body: "/api/metrics/counter")
    assert statuses == [201] * THREADS
    assert stored_metric(apps[0], "race.new") == ("race.new", "counter")
    assert sorted(v for _, v in stored_points(apps[0], "race.new")) == list(map(float, range(8)))


def test_racing_types_leave_exactly_one_type(make_app):
    apps = [make_app() for _ in range(THREADS)]
    bodies = [{"name": "race.typed", "value": i, "kind": i % 2} for i in range(THREADS)]
    paths = {0: "/api/metrics/counter", 1: "/api/metrics/value"}
    statuses = race(apps, bodies, lambda body: paths[body["kind"]])
    _, winner = stored_metric(apps[0], "race.typed")
    expected = [201 if paths[i % 2].endswith(winner) else 409 for i in range(THREADS)]
    assert statuses == expected
    assert len(stored_points(apps[0], "race.typed")) == THREADS // 2


def test_concurrent_batches_of_overlapping_new_metrics(make_app):
    apps = [make_app() for _ in range(THREADS)]
    names = [f"overlap.{n}" for n in range(20)]
    bodies = [
        {"metrics": [{"name": n, "type": "counter"} for n in (names if i % 2 else names[::-1])]}
        for i in range(THREADS)
    ]
    statuses = race(apps, bodies, lambda body: "/api/metrics/batch")
    assert statuses == [201] * THREADS
    for name in names:
        assert len(stored_points(apps[0], name)) == THREADS
