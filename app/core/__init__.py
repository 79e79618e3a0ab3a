"""The domain's rules with no I/O: names, tags and filters, time windows and zones, buckets,
sketches. Nothing here imports Flask, a database or Redis; everything above may import it."""
