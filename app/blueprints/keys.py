"""/api/keys: an ``admin`` key manages the keys of its own tenant — create (the raw key shown
once), list, change scope or limit, revoke. Another tenant's key answers exactly as a missing
one (404 NOT_FOUND). Every change is logged with who made it, never a key."""

import logging

from flask import Blueprint, current_app, g, jsonify

from app.api.auth import SCOPE_CHOICES, create_key, requires, tenant_id
from app.api.body import read_body
from app.api.errors import ApiError
from app.api.key_schemas import KeyChangeSchema, KeyCreateSchema
from app.api.principals import ADMIN
from app.core.timeutil import isoformat_z, utcnow
from app.db import get_store

bp = Blueprint("keys", __name__, url_prefix="/api/keys")
log = logging.getLogger(__name__)
_create_schema = KeyCreateSchema()
_change_schema = KeyChangeSchema()
MAX_KEY_ID = 2**31 - 1


def describe(row):
    """A key as the API shows it: never its hash, never the key."""
    return {
        "id": row.id,
        "prefix": row.prefix,
        "name": row.name,
        "scopes": row.scopes.split(","),
        "rate_limit": row.rate_limit or current_app.config["METRICS_RATE_LIMIT_DEFAULT"],
        "created_at": isoformat_z(row.created_at),
        "last_used_at": isoformat_z(row.last_used_at) if row.last_used_at else None,
        "revoked_at": isoformat_z(row.revoked_at) if row.revoked_at else None,
    }


def _own_key(key_id):
    """The calling tenant's key ``key_id``; 404 NOT_FOUND for a missing or another tenant's."""
    row = None
    if key_id <= MAX_KEY_ID:  # larger is no id (and past what SQLite can compare)
        row = get_store(current_app).find_key(key_id, tenant_id())
    if row is None or row.id != key_id:
        raise ApiError("NOT_FOUND", f"No API key {key_id}", status=404)
    return row


def _logged(action, row, **what):
    log.info(
        "api key %s: key %s (%s) of tenant %s by %s%s",
        action, row.id, row.prefix, g.api_key.tenant.name, g.api_key.who,
        "".join(f", {name} {value}" for name, value in what.items()),
    )  # fmt: skip


@bp.post("")
@requires(ADMIN)
def create():
    """Create a key in the caller's tenant; the raw key is in this answer and nowhere else."""
    body = _create_schema.load(read_body())
    store = get_store(current_app)
    scopes = SCOPE_CHOICES[body["scope"]]
    raw, key_id = create_key(store, body["name"], body["rate_limit"], scopes, tenant_id())
    row = store.find_key(key_id, tenant_id())
    _logged("created", row, scopes=row.scopes, rate_limit=row.rate_limit or "default")
    response = jsonify(success=True, key=raw, **_without_times(describe(row)))
    response.status_code = 201
    return response


def _without_times(described):
    return {k: v for k, v in described.items() if k not in ("last_used_at", "revoked_at")}


@bp.get("")
@requires(ADMIN)
def list_keys():
    """The caller's tenant's keys, oldest first (revoked ones included)."""
    rows = get_store(current_app).list_keys(tenant_id())
    return jsonify(success=True, data=[describe(row) for row in rows])


@bp.patch("/<int:key_id>")
@requires(ADMIN)
def change(key_id):
    """Change a key's scope and/or rate limit; every server applies it within 5 s."""
    body = _change_schema.load(read_body())
    row = _own_key(key_id)
    values = {}
    if "scope" in body:
        values["scopes"] = SCOPE_CHOICES[body["scope"]]
    if "rate_limit" in body:
        values["rate_limit"] = body["rate_limit"]
    store = get_store(current_app)
    store.change_key(row.id, values)
    _logged("changed", row, **values)
    return jsonify(success=True, **describe(store.find_key(key_id, tenant_id())))


@bp.delete("/<int:key_id>")
@requires(ADMIN)
def revoke(key_id):
    """Revoke a key (again is harmless); every server refuses it within 5 s."""
    row = _own_key(key_id)
    store = get_store(current_app)
    if store.revoke_key(row.id, utcnow()):
        _logged("revoked", row)
    return jsonify(success=True, **describe(store.find_key(key_id, tenant_id())))
