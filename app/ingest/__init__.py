"""The write path's front door: it takes validated points and their answer rule, and either
hands them to this process's group-commit writer (INGEST_MODE=sync) or checks them at the door
and appends them to the durable Redis buffer that drain jobs empty (INGEST_MODE=queue). It
calls the store; it never sees a request."""
