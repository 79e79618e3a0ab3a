"""Engine events shared by the dialects."""

import time

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

PING_AFTER_IDLE_SECONDS = 2


def ping_when_idle(engine):
    """Check a pooled connection before use only if it sat idle: under load a ping per
    checkout is a round trip per transaction, and a connection used a moment ago is alive.
    A dead one is replaced (DisconnectionError makes the pool connect afresh)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                dbapi_connection.ping(reconnect=False)
            except Exception as exc:
                raise DisconnectionError(f"stale pooled connection: {exc}") from exc
