"""Group commit: one writer thread per process turns concurrent requests into one transaction.

A request hands its points to ``GroupWriter.submit`` and waits for the commit that holds them.
The thread takes whatever is waiting (up to ``max_batch`` points); when more than one request
was waiting — the server is busy — it lingers a little for more, so a lone request on an idle
server is written at once. One metric resolution, one ``executemany``, one COMMIT for the
group; then every request in it is answered. A failed commit fails every request in it (none
gets a false 201), except that an error which is not the database's unavailability is retried
request by request, so one request's fault cannot fail its neighbours.

Bounded: at most ``queue_limit`` points wait; past that a request waits for room, and past
``wait_seconds`` it is refused (503) with nothing written. The thread starts on first use in
each process (after gunicorn's fork, never in the master) and ``close`` flushes what is queued.
"""

import copy
import logging
import threading
import time
from collections import deque

from app.core.timeutil import utcnow
from app.db.errors import is_retriable_error, is_unavailable_error

log = logging.getLogger(__name__)

# How long past WRITER_WAIT_SECONDS a request waits for the transaction that holds it.
IN_FLIGHT_GRACE_SECONDS = 1.0


class WriterUnavailable(Exception):
    """The writer cannot take the request (full past the deadline, or shutting down): 503."""


class _Pending:
    """A submitted request and, once its group is committed, its answer or error."""

    __slots__ = ("request", "done", "answer", "error", "taken")

    def __init__(self, request):
        self.request = request
        self.done = threading.Event()
        self.answer = None
        self.error = None
        self.taken = False


class GroupWriter:
    """The process's writer thread and its bounded queue of waiting requests."""

    def __init__(
        self,
        store,
        linger_ms=2,
        max_batch=5000,
        queue_limit=50_000,
        wait_seconds=10,
        observer=None,
    ):
        self.store = store  # runs each group's transaction (write_requests)
        self.linger = linger_ms / 1000
        self.max_batch = max_batch
        self.queue_limit = queue_limit
        self.wait_seconds = wait_seconds
        self.observer = observer  # called as observer(requests, answers, seconds) per commit
        self._queue = deque()
        self._queued_points = 0
        self._in_flight = 0  # requests in the transaction being written
        self._cond = threading.Condition()
        self._closing = False
        self._thread = None

    @property
    def backlog(self):
        """Requests waiting or being written now."""
        return len(self._queue) + self._in_flight

    def submit(self, request):
        """Queue ``request`` and wait for its commit; its Answer, or the commit's exception."""
        pending = _Pending(request)
        deadline = time.monotonic() + self.wait_seconds
        with self._cond:
            self._wait_for_room(request.size, deadline)
            self._queue.append(pending)
            self._queued_points += request.size
            self._start_thread()
            self._cond.notify_all()
        if not pending.done.wait(max(0.0, deadline - time.monotonic())):
            self._abandon_or_wait(pending)
        if pending.error is not None:
            # Each request thread raises its own copy: one exception object raised in several
            # threads at once would tangle their tracebacks.
            raise copy.copy(pending.error)
        return pending.answer

    def _wait_for_room(self, size, deadline):
        while self._queue and self._queued_points + size > self.queue_limit:
            remaining = deadline - time.monotonic()
            if self._closing or remaining <= 0 or not self._cond.wait(remaining):
                raise WriterUnavailable("the writer is saturated; retry shortly")
        if self._closing:
            raise WriterUnavailable("the server is shutting down; retry shortly")

    def _abandon_or_wait(self, pending):
        """Past the deadline: drop the request if no transaction holds it yet; if one does,
        give it a moment more, then answer 503 anyway — a database that hangs must not hold
        the client for the driver's whole timeout. (That transaction may still commit: a 503
        never promises that nothing landed; an Idempotency-Key makes the retry exact.)"""
        with self._cond:
            if not pending.taken:
                self._queue.remove(pending)
                self._queued_points -= pending.request.size
                self._cond.notify_all()
                raise WriterUnavailable("the writer did not reach this request in time")
        if not pending.done.wait(IN_FLIGHT_GRACE_SECONDS):
            raise WriterUnavailable(
                "the database did not finish this request's transaction in time"
            )

    def _start_thread(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="group-writer", daemon=True)
            self._thread.start()

    def close(self, timeout=30):
        """Refuse new requests, commit the waiting ones and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self):
        while True:
            group = self._take()
            if not group:
                return
            self._commit(group)
            self._in_flight = 0

    def _take(self):
        """The next group: what waits, and with concurrency a short linger for more."""
        with self._cond:
            while not self._queue:
                if self._closing:
                    return []
                self._cond.wait()
            group, points = self._pop_into([], 0)
            self._in_flight = len(group)
            if len(group) > 1 and self.linger > 0:
                deadline = time.monotonic() + self.linger
                while points < self.max_batch and not self._closing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    if not self._queue:
                        self._cond.wait(remaining)
                    group, points = self._pop_into(group, points)
                    self._in_flight = len(group)
            self._cond.notify_all()  # room for the requests waiting on a full queue
            return group

    def _pop_into(self, group, points):
        while self._queue and (not group or points + self._queue[0].request.size <= self.max_batch):
            pending = self._queue.popleft()
            pending.taken = True
            size = pending.request.size
            self._queued_points -= size
            points += size
            group.append(pending)
        return group, points

    def _observe(self, requests, answers, seconds):
        if self.observer is None:
            return
        try:
            self.observer(requests, answers, seconds)
        except Exception:  # telemetry must never fail a commit that happened
            log.exception("group commit observer failed")

    def _commit(self, group):
        started = time.perf_counter()
        requests = [pending.request for pending in group]
        try:
            answers = self.store.write_requests(requests, utcnow())
        except Exception as exc:
            if len(group) > 1 and not (is_unavailable_error(exc) or is_retriable_error(exc)):
                log.warning(
                    "group commit of %d requests failed (%s); retrying one by one",
                    len(group),
                    type(exc).__name__,
                )
                for pending in group:
                    self._commit([pending])
                return
            for pending in group:
                pending.error = exc
                pending.done.set()
            return
        self._observe(requests, answers, time.perf_counter() - started)
        for pending, answer in zip(group, answers, strict=True):
            pending.answer = answer
            pending.done.set()
