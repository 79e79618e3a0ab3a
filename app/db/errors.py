"""Which database errors mean 'retry the transaction' and which mean 'unavailable now'.

PyMySQL raises OperationalError for every server error it has no class for (unknown column,
missing partition…), so MySQL errors are told apart by number, SQLite's by message.
Everything not listed is a bug of ours: 500, logged with its traceback.
"""

from sqlalchemy.exc import DBAPIError

# Lock wait timeout, deadlock: running the whole transaction again may succeed.
MYSQL_RETRIABLE = {1205, 1213}
MYSQL_UNAVAILABLE = MYSQL_RETRIABLE | {
    1040,  # too many connections
    1045,  # access denied (credentials rotated under us)
    1053,  # server shutdown in progress
    1290,  # --read-only (a failover in progress)
    1836,  # read-only mode
    1927,  # connection killed
    2002,  # can't connect through socket
    2003,  # can't connect to server
    2005,  # unknown host
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection at handshake
    4031,  # disconnected by the server (idle timeout)
}
SQLITE_UNAVAILABLE = (
    "database is locked",
    "unable to open database",
    "disk i/o error",
    "database or disk is full",
    "readonly database",
)


def mysql_code(exc):
    """The MySQL error number of a DBAPIError, or None."""
    args = getattr(getattr(exc, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_retriable_error(exc):
    """True when running the same transaction again may succeed (deadlock, lock timeout)."""
    return isinstance(exc, DBAPIError) and mysql_code(exc) in MYSQL_RETRIABLE


def is_unavailable_error(exc):
    """True when the database cannot be reached or used right now (→ 503, not 500)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = mysql_code(exc)
    if code is not None:
        return code in MYSQL_UNAVAILABLE
    message = str(exc.orig).lower()
    return any(marker in message for marker in SQLITE_UNAVAILABLE)


class LockBusy(Exception):
    """Someone else holds a named lock."""
