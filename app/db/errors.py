"""Which database errors mean 'retry the transaction' and which mean 'unavailable now'."""

from sqlalchemy.exc import DBAPIError, OperationalError

# MySQL: lock wait timeout, deadlock — the whole transaction may simply be run again.
_MYSQL_RETRIABLE = {1205, 1213}
# SQLite reports a programming mistake as OperationalError too; those are bugs, not outages.
_SQLITE_BUGS = ("no such table", "no such column", "syntax error")


def _mysql_code(exc):
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_retriable_error(exc):
    """True when running the same transaction again may succeed (deadlock, lock timeout)."""
    if not isinstance(exc, DBAPIError):
        return False
    if _mysql_code(exc) in _MYSQL_RETRIABLE:
        return True
    return "database is locked" in str(exc.orig)


def is_unavailable_error(exc):
    """True when the database cannot be reached or used right now (→ 503, not 500)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    return not any(marker in str(exc.orig) for marker in _SQLITE_BUGS)
