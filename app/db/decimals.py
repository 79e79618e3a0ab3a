"""Exact decimal sums of doubles: each value's shortest decimal form, added exactly.

SQLite registers ``decimal_sum`` and ``decimal_add`` on every connection (app/db/sql_sqlite.py);
MySQL sums DECIMAL(65,30) with the values too small for it (|v| < TINY) as doubles beside.
"""

from decimal import Context, Decimal

# A double's 17 significant digits fit in DECIMAL(65,30) from this magnitude up; smaller
# values are summed as doubles beside the exact decimal total (1.36x a plain SUM, measured).
TINY = 1e-13
# Enough digits to add any doubles exactly (their decimal exponents span about 630 places).
EXACT = Context(prec=800)


def exact_decimal(value):
    """A stored value as an exact Decimal: decimal text as written, a double by its shortest
    decimal form."""
    return Decimal(value) if isinstance(value, str) else Decimal(repr(float(value)))


def decimal_add(left, right):
    """SQLite function ``decimal_add(a, b)``: the exact sum of two decimal texts, as text."""
    return str(EXACT.add(exact_decimal(left), exact_decimal(right)))


class DecimalSum:
    """SQLite aggregate ``decimal_sum(x)``: the exact sum of each value's shortest decimal (or
    of decimal texts, as rollups keep), returned as text so no digit is lost before Python
    reads it."""

    def __init__(self):
        self.total = None

    def step(self, value):
        """Take one value."""
        if value is not None:
            term = exact_decimal(value)
            self.total = term if self.total is None else EXACT.add(self.total, term)

    def finalize(self):
        """The sum as decimal text, or NULL for no rows."""
        return None if self.total is None else str(self.total)
