"""A write as the domain sees it: validated points, the request that carries them with its
answer rule and Idempotency-Key receipt, what happened to them, and what the client is told —
with the rules for answering a repeated key. Pure values: the store records answers, the front
door hands requests over, the HTTP edge renders them."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.tenants import DEFAULT_TENANT_ID


@dataclass(frozen=True)
class Point:
    """One validated point of a tenant's metric; ``recorded_at`` is naive UTC; ``tags`` is its
    tag set's canonical text (app/core/tags.py; "{}" untagged) and ``tags_hash`` that text's
    64-bit key."""

    name: str
    type: str
    value: float
    recorded_at: object
    tags: str = "{}"
    tags_hash: int = 0
    tenant_id: int = DEFAULT_TENANT_ID

    @property
    def key(self):
        """Its metric's key, ``(tenant_id, name)``."""
        return (self.tenant_id, self.name)


@dataclass
class WriteResult:
    """Which of a request's points were stored, and which clashed with a metric's type."""

    written: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)  # (position, Metric)
    limited: list = field(default_factory=list)  # positions of new metrics past the limit
    series_limited: list = field(default_factory=list)  # positions of new series past theirs
    queued: bool = False  # accepted into the queue rather than committed


@dataclass(frozen=True)
class Answer:
    """What the client is told: HTTP status and JSON body; ``replayed`` for a repeated key."""

    status: int
    body: dict
    replayed: bool = False
    stored: dict = field(default_factory=dict, compare=False)  # points written, by type

    def text(self):
        """The body as stored with an idempotency receipt."""
        return json.dumps(self.body, separators=(",", ":"))


# The answer for a reused Idempotency-Key with another request; mapped to 422 at the edge.
CONFLICT = Answer(422, {}, replayed=True)


@dataclass
class WriteRequest:
    """One request's points, its answer rule (a pure function of the WriteResult, defined by
    the front door, run inside the store's transaction so the receipt records the answer) and
    its optional Idempotency-Key receipt."""

    points: list
    respond: Callable[[WriteResult], Answer]
    receipt: object = None  # a receipts.Receipt

    @property
    def size(self):
        """How much room the request takes in a group: its points, at least one."""
        return max(1, len(self.points))


def replay(receipt, recorded):
    """The first answer to a key, or CONFLICT when this request is not the same one."""
    if recorded.request_hash != receipt.request_hash or recorded.status is None:
        return CONFLICT
    return Answer(recorded.status, json.loads(recorded.body), replayed=True)


def follow(request, leader_request, leader_answer):
    """A repeat of a key first applied in this same group gets that request's answer."""
    if request.receipt.request_hash != leader_request.receipt.request_hash:
        return CONFLICT
    return Answer(leader_answer.status, leader_answer.body, replayed=True)
