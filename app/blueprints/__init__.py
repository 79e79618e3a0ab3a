"""HTTP blueprints: ingest, query and health; each module exports ``bp``."""
