"""Which database errors mean 'retry the transaction' and which mean 'unavailable now'.

PyMySQL raises OperationalError for every server error it has no class for (unknown column,
missing partition…), so MySQL errors are told apart by number, SQLite's by message.
Everything not listed is a bug of ours: 500, logged with its traceback.
"""

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

# What the database raises, for layers that must catch it without knowing the driver.
DatabaseError = DBAPIError

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


class PointsUnavailable(Exception):
    """The points engine (ClickHouse) cannot be reached or used right now."""


def is_unavailable_error(exc):
    """True when the database cannot be reached or used right now (→ 503, not 500)."""
    if isinstance(exc, PointsUnavailable):
        return True
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


def explain(error, url):
    """What a person should know about a database error met by a command, naming
    DATABASE_URL (its password hidden) and the likely fix."""
    shown = make_url(url).render_as_string(hide_password=True)
    code = mysql_code(error)
    database = make_url(url).database
    if code == 1049:
        return (
            f"the database {database!r} does not exist ({shown}): create it "
            f"(CREATE DATABASE {database} CHARACTER SET utf8mb4; see the README's Production "
            "section) or fix DATABASE_URL"
        )
    if code in (1044, 1045):
        return f"the database refused the user in DATABASE_URL ({shown}): {error.orig.args[1]}"
    if code in (2002, 2003, 2005, 2006, 2013):
        return f"cannot reach the database at {shown}: start it, or fix DATABASE_URL"
    if "unable to open database" in str(error.orig):
        return f"cannot open the SQLite file of DATABASE_URL ({shown}): check its directory"
    return f"the database at {shown} failed: {error.orig}"
