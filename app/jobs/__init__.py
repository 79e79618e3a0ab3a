"""RQ jobs: importable module-level functions over plain data (lists, ids, timestamps), never
an app or a request. ``ingest`` writes queued points; ``maintenance`` keeps partitions,
retention and receipts; ``schedule`` registers the maintenance jobs with rq-scheduler."""
