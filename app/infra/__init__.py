"""Process plumbing with no domain in it: logging (JSON lines, request ids), the service's own
Prometheus figures, and the Redis client. Any layer above ``core`` may use it."""
