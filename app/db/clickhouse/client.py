"""The clickhouse-connect clients of a POINTS_URL: ``clickhouse://user:pass@host:8123/db`` (a
server over HTTP; ``clickhouses://`` for HTTPS) or ``chdb:///path`` (the same client's
in-process engine on a directory; ``?database=name`` picks the database). Query parameters of
the URL are ClickHouse settings (``?insert_quorum=2`` in a cluster).

Each thread gets a client of its own on first use (a chdb client runs one query at a time; an
HTTP client without a session may be shared, but one per thread keeps the two alike), so the
engine is opened only when points are first touched.
"""

import threading
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import parse_qsl, unquote, urlsplit

# Every write's guarantees, sent with every statement: synchronous inserts (async_insert
# defaults to 1 in current releases, answers before the rows are in a part and is not
# deduplicated on a plain MergeTree), deduplicated by token in the materialized views' tables
# too, and deletes that return only once applied. fsync is a table setting (sql/clickhouse/).
SETTINGS = {
    "async_insert": 0,
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "lightweight_deletes_sync": 2,
    "mutations_sync": 2,
}
DEFAULT_DATABASE = "default"
PORTS = {"clickhouse": 8123, "clickhouses": 8443}
SEND_RECEIVE_TIMEOUT = 60  # seconds; receipts pending longer are looked at (writes.LEASE)


@dataclass(frozen=True)
class Target:
    """Where a POINTS_URL points: a server (host, port, credentials) or a chdb directory."""

    database: str
    path: str | None = None  # chdb: the engine's directory
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str = field(default="", repr=False)
    secure: bool = False
    settings: dict = field(default_factory=dict)

    @property
    def in_process(self):
        """Whether this is the in-process engine (one process per directory)."""
        return self.path is not None


def parse(url):
    """The Target of a POINTS_URL."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    database = query.pop("database", None)
    settings = {**SETTINGS, **query}
    if parts.scheme == "chdb":
        return Target(database or DEFAULT_DATABASE, path=parts.path, settings=settings)
    return Target(
        database=unquote(parts.path.strip("/")) or database or DEFAULT_DATABASE,
        host=parts.hostname,
        port=parts.port or PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password or ""),
        secure=parts.scheme == "clickhouses",
        settings=settings,
    )


def client_arguments(target, database=True):
    """The keyword arguments of ``clickhouse_connect.get_client`` for a Target (``database``:
    False for a client outside it, to create it)."""
    chosen = {"database": target.database} if database else {}
    if target.in_process:
        return {"interface": "chdb", "path": target.path, "settings": target.settings, **chosen}
    return {
        "interface": "https" if target.secure else "http",
        "host": target.host,
        "port": target.port,
        "username": target.username,
        "password": target.password,
        "settings": target.settings,
        "send_receive_timeout": SEND_RECEIVE_TIMEOUT,
        "autogenerate_session_id": False,  # no session: statements of many threads at once
        **chosen,
    }


def connect(target, database=True):
    """A new client of a Target (clickhouse-connect is imported only here: an install without
    the ``clickhouse`` extra runs while POINTS_URL is unset)."""
    try:
        import clickhouse_connect
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "POINTS_URL needs clickhouse-connect: pip install -e '.[clickhouse]'"
        ) from exc
    return clickhouse_connect.get_client(**client_arguments(target, database))


class Clients:
    """One client per thread of a Target, made on first use; ``close`` closes them all."""

    def __init__(self, target):
        self.target = target
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all = []

    def get(self):
        """This thread's client."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = connect(self.target)
            with self._lock:
                self._all.append(client)
        return client

    def close(self, close=True):
        """Close every client (``close=False``: forget them, in a forked child)."""
        with self._lock:
            clients, self._all = self._all, []
        self._local = threading.local()
        for client in clients if close else ():
            client.close()


def aware(moment):
    """A naive UTC datetime (the service's own) as an aware one, which clickhouse-connect
    sends as that instant whatever the process's time zone."""
    return moment.replace(tzinfo=UTC)


def naive(moment):
    """A datetime read from ClickHouse as the service's naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
