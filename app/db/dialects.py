"""The one place a database's dialect is told apart: it picks the module holding that
dialect's SQL (``sql_mysql`` or ``sql_sqlite``), which everything else then calls."""

from app.db import sql_mysql, sql_sqlite

_MODULES = {"sqlite": sql_sqlite, "mysql": sql_mysql, "mariadb": sql_mysql}


def for_url(url):
    """The dialect module of a DATABASE_URL."""
    return sql_sqlite if url.startswith("sqlite") else sql_mysql


def of(bind):
    """The dialect module of an engine or connection."""
    return _MODULES[bind.dialect.name]
