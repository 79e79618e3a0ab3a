"""HTTP blueprints: ingest, query, health and ui (the chart page); each module exports ``bp``."""
