"""ClickHouse as the points engine (POINTS_URL): the points and their rollups live there, the
relational data (metrics, series, keys, receipts) stays in DATABASE_URL.

``client`` builds clickhouse-connect clients from the URL, ``schema`` applies
``sql/clickhouse/``, ``queries`` reads bucketed aggregates, ``writes`` is the write protocol
between the relational receipt and the points, and ``points.ClickHousePoints`` is the engine
the store holds (the relational one is ``app/db/points_sql.py``).
"""
