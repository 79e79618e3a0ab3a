"""Statements whose SQL differs by dialect, in one labelled place."""

from sqlalchemy import insert


def insert_ignore(table):
    """INSERT that skips rows whose unique key exists (MySQL ``IGNORE``, SQLite ``OR IGNORE``).

    On InnoDB a row another transaction is inserting makes this wait for that transaction's
    end, then skip the row if it committed.
    """
    return (
        insert(table)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )
