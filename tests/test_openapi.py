"""The OpenAPI document: served, current in docs/, complete, and true under a fuzzer.

The fuzz test runs schemathesis against a live gunicorn on MariaDB: every operation, positive
and negative examples (derandomized, so a run is repeatable), checking for server errors,
undocumented statuses and content types, responses that break their schema, invalid requests
that were accepted and valid ones that were refused. ``FUZZ_MAX_EXAMPLES`` (default 50) sets
the examples per operation, for a longer run by hand.
"""

import json
import math
import os
import re
import time
import uuid
from datetime import UTC, datetime

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from app import config, create_app
from app.api import openapi
from app.api.errors import ERROR_CODES
from app.api.schemas import QUERY_ALIASES
from app.core.alerts import target_problem
from app.core.constants import DECIMAL_TEXT_PATTERN, MAX_ABS_VALUE, TIMESTAMP_TEXT_PATTERN
from app.core.stathat import STAT_PATTERN, BadStatName, metric_names
from app.core.tags import TagError, parse_filter
from app.core.timeutil import isoformat_z, parse_decimal, parse_timestamp
from app.db import get_store
from tests.harness import ROOT, Gunicorn, drop_abandoned_databases, drop_database
from tests.helpers import (
    MYSQL_SERVER_URL,
    check_log,
    migrated_database,
    new_key,
)

DOCS_COPY = ROOT / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
FUZZ_CONFIG = {
    "generation": {
        "mode": "all",
        "max-examples": int(os.environ.get("FUZZ_MAX_EXAMPLES", "50")),
        "deterministic": True,
        # Every request carries the fuzz key as X-API-Key, which wins over Authorization: a
        # generated Bearer header beside it is ignored, so a negative case that broke only
        # that header would be "accepted". The schemes themselves are test_auth's.
        "with-security-parameters": False,
    },
}


def test_the_document_is_served_without_a_key(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["schemas"]["Batch"]["properties"]["metrics"]["maxItems"] == 1000


def test_the_document_follows_the_settings(make_app):
    app = make_app(METRICS_MAX_BATCH=7)
    document = app.test_client().get("/openapi.json").get_json()
    assert document["components"]["schemas"]["Batch"]["properties"]["metrics"]["maxItems"] == 7


def test_docs_copy_is_current():
    assert DOCS_COPY.read_text() == openapi.render(config.load({})), (
        "docs/openapi.json is stale: run .venv/bin/python -m scripts.openapi"
    )


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("static"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            yield path, method.lower()


def test_every_route_is_documented(app):
    paths = openapi.document(app.config)["paths"]
    missing = [(p, m) for p, m in _routes(app) if m not in paths.get(p, {})]
    assert not missing
    documented = [(p, m) for p, ops in paths.items() for m in ops]
    assert sorted(documented) == sorted(set(_routes(app)))


def test_every_error_code_is_documented(app):
    document = openapi.document(app.config)
    assert document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"][
        "enum"
    ] == list(ERROR_CODES)
    readme = (ROOT / "README.md").read_text()
    assert [code for code in ERROR_CODES if f"`{code}`" not in readme] == []


# The document's hand-written patterns against the parsers they describe.
@settings(max_examples=200, deadline=None)
@given(st.from_regex(TIMESTAMP_TEXT_PATTERN, fullmatch=True))
def test_documented_time_text_is_read(text):
    number = parse_decimal(text.strip())
    if number is None or math.isfinite(number):  # beyond a float: a range the text describes
        parse_timestamp(text)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(DECIMAL_TEXT_PATTERN, fullmatch=True))
def test_documented_decimal_text_is_read(text):
    assert parse_decimal(text) is not None


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("a~, \t\u3000\x1c/é"), max_size=12) | st.text(max_size=40))
def test_the_stat_pattern_is_the_stats_that_map_to_a_name(stat):
    try:
        mapped = bool(stat.strip()) and bool(metric_names(stat))
    except BadStatName:
        mapped = False
    assert bool(re.search(STAT_PATTERN, stat)) == mapped


def test_the_document_is_valid_openapi(app):
    schema = schemathesis.openapi.from_dict(openapi.document(app.config))
    schema.validate()
    assert len(list(schema.get_all_operations())) == len(set(_routes(app)))


@pytest.fixture(scope="module")
def fuzz_server():
    """gunicorn on a MariaDB database of its own, with an admin key nothing limits."""
    drop_abandoned_databases(MYSQL_SERVER_URL, "gf_test_fuzz_")
    name = f"gf_test_fuzz_{os.getpid()}"
    url = migrated_database(name)
    app = create_app({"DATABASE_URL": url})
    key = new_key(app, "fuzz", rate_limit=10_000_000, scopes="admin")
    runner = app.test_cli_runner()
    stat_keys = {
        path: runner.invoke(args=["metrics", "stat-key", name]).stdout.splitlines()[-1]
        for path, name in (("/c", "fuzzed.count"), ("/v", "fuzzed.value"))
    }
    spare = new_key(app, "fuzzed", scopes="read")  # the key the fuzzer may change or revoke
    own_id = get_store(app).find_key(key[:11]).id
    keys = {"api": key, "stat": stat_keys, "own_id": own_id,
            "spare_id": get_store(app).find_key(spare[:11]).id}  # fmt: skip
    server = Gunicorn({"DATABASE_URL": url, "WEB_CONCURRENCY": "2"}).start()
    yield server, keys
    server.stop()
    check_log(server)
    server.cleanup()
    drop_database(MYSQL_SERVER_URL, name)


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_server):
    server, keys = fuzz_server
    schema = schemathesis.openapi.from_url(
        server.base + "/openapi.json", config=schemathesis.Config.from_dict(FUZZ_CONFIG)
    )

    @schema.hook
    def filter_case(context, case):
        return _describable(case)

    @schema.hook
    def filter_failure(context, failure, case, response):
        return not (
            _type_conflicts_only(failure, case, response) or _counter_percentile(failure, response)
        )

    @schema.hook
    def map_case(context, case):
        return _fit(case, keys)

    @schema.hook
    def before_add_examples(context, examples):
        for case in examples:  # the document's examples, and cases built from them
            _fit(case, keys)

    return schema


schema = schemathesis.pytest.from_fixture("fuzz_schema")

# What the document states but JSON Schema cannot enforce, and the fuzzer therefore must not
# generate (each rule is in the document's descriptions):
# - An alias (`from`, `interval`…) stands for its canonical parameter and is ignored when that
#   is sent; parameters are independent in OpenAPI, so a negative case that breaks an alias
#   beside its canonical name (or sends `metric` for a missing `name`) is not one. Aliases are
#   fuzzed with valid values only. The same for /ez's `value` beside `count` in a query string.
# - A filter's regex must be valid RE2, which no pattern can say: positive cases keep to it.
# - A webhook target must not name a private or loopback host (ALERTS_ALLOW_PRIVATE_TARGETS is
#   off), which no pattern can say: positive cases keep to public ones.
# - A number written as text (a form's `value`, StatHat's `count` and `value`) must be finite
#   and |v| ≤ 1e16: a pattern can say "decimal", not how large, so positive cases keep to it.
_STATHAT = ("/ez", "/c", "/v")
_NUMBER_TEXT_FIELDS = ("count", "value")


def _number_text_fits(value):
    number = parse_decimal(value) if isinstance(value, str) else None
    return number is None or (math.isfinite(number) and abs(number) <= MAX_ABS_VALUE)


def _fields(case):
    """Every dict of fields a case sends: query, body, and a batch's or /ez's items."""
    containers = [case.query or {}]
    if isinstance(case.body, dict):
        containers.append(case.body)
        for items in (case.body.get("metrics"), case.body.get("data")):
            if isinstance(items, list):
                containers += [item for item in items if isinstance(item, dict)]
    return containers


def _describable(case):
    """Whether a generated case is one the document can judge (see above)."""
    if case.meta is None:
        return True
    query = case.query or {}
    if case.meta.generation.mode.is_negative:
        if any(alias in query for alias in QUERY_ALIASES):
            return False
        return not (case.operation.path == "/ez" and {"count", "value"} <= query.keys())
    if not all(_regex_compiles(text) for text in _filter_texts(case)):
        return False
    if not all(target_problem(text, False) is None for text in _targets(case)):
        return False
    path = case.operation.path
    if path in _STATHAT or path in ("/api/metrics/counter", "/api/metrics/value"):
        return all(
            _number_text_fits(fields.get(name))
            for fields in _fields(case)
            for name in _NUMBER_TEXT_FIELDS
        )
    return True


def _filter_texts(case):
    """The filter strings a case sends (GET's `filter`, POST /api/query's `filters`)."""
    texts = []
    for fields in _fields(case):
        for name in ("filter", "filters"):
            value = fields.get(name)
            texts += value if isinstance(value, list) else [value] if value is not None else []
    return [text for text in texts if isinstance(text, str)]


def _targets(case):
    """The alert targets a case sends (their shape is the document's; only the host is not)."""
    notify = case.body.get("notify") if isinstance(case.body, dict) else None
    return [text for text in notify if isinstance(text, str)] if isinstance(notify, list) else []


def _regex_compiles(text):
    try:
        parse_filter(text)
    except TagError as error:
        return "bad regex" not in error.reason
    return True


def _type_conflicts_only(failure, case, response):
    """A valid batch refused only because each valid item's metric exists with the other type
    (an earlier case created it): the batch's form of a 409, which the check allows for the
    other routes, not valid data refused."""
    if not isinstance(failure, RejectedPositiveData) or case.operation.path != "/api/metrics/batch":
        return False
    item = case.operation.schema.raw_schema["components"]["schemas"]["BatchItem"]
    valid = jsonschema_rs.validator_for(item).is_valid
    try:
        codes = {error["index"]: error["code"] for error in response.json()["errors"]}
    except (ValueError, KeyError, TypeError):
        return False
    indexes = [index for index, item in enumerate(case.body["metrics"]) if valid(item)]
    return bool(indexes) and all(codes.get(i) == "METRIC_TYPE_MISMATCH" for i in indexes)


def _counter_percentile(failure, response):
    """A valid query refused only because it asks a percentile of a metric an earlier case made
    a counter: what a metric's type allows depends on the data (the document says so), like
    the 409 of a type conflict."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    message = error.get("message", "")
    return error.get("code") == "VALIDATION_ERROR" and "percentile of value metrics" in message


def _fit(case, keys):
    """A positive case as the service can take it: real keys, times relative to now, an
    unused Idempotency-Key."""
    if case.meta is None or case.meta.generation.mode.is_positive:
        _with_keys(case, keys)
        _fresh(case)
    if (case.path_parameters or {}).get("key_id") == keys["own_id"]:
        case.path_parameters["key_id"] = keys["spare_id"]  # never the fuzzer's own key
    return case


def _with_keys(case, keys):
    """A positive StatHat case carries real keys: random ones would only ever find 401/404."""
    path = case.operation.path
    if path not in _STATHAT:
        return
    fields = {"ezkey": keys["api"]} if path == "/ez" else {"ukey": keys["api"]}
    if path in keys["stat"]:
        fields["key"] = keys["stat"][path]
    if case.method == "POST" and isinstance(case.body, dict):
        case.body.update(fields)
    else:
        case.query = {**(case.query or {}), **fields}


# Times a route judges against the moment it runs, by field: seconds before now. A write's time
# must lie within the last METRICS_MAX_PAST_DAYS days (and a minute ahead); a query's start
# must come before its end, and the range fit the bucket and point limits. The document
# describes these; a positive case gets a time that keeps them, written as it was generated
# (epoch number or text).
_RELATIVE_TIMES = {"recorded_at": 0, "t": 0, "start": 3600, "from": 3600, "end": 0, "to": 0}
# An Idempotency-Key is meant to be used once: a positive case that reused one for another
# request is refused, by design, with 422 IDEMPOTENCY_KEY_REUSED.
_IDEMPOTENCY_KEY = "Idempotency-Key"


def _fresh(case):
    """A positive case with times relative to now and an unused Idempotency-Key."""
    now = time.time()
    for fields in _fields(case):
        for name, before in _RELATIVE_TIMES.items():
            value = fields.get(name)
            if value is None or value == "":
                continue
            moment = now - before
            if isinstance(value, str):
                moment = isoformat_z(datetime.fromtimestamp(moment, UTC).replace(tzinfo=None))
            fields[name] = moment
    if case.headers and _IDEMPOTENCY_KEY in case.headers:
        case.headers[_IDEMPOTENCY_KEY] = uuid.uuid4().hex


@schema.parametrize()
def test_the_contract_holds_under_fuzzing(case, fuzz_server):
    _, keys = fuzz_server
    case.call_and_validate(headers={"X-API-Key": keys["api"]}, checks=CHECKS)


def test_fuzzed_server_log_is_clean_json(fuzz_server):
    server, _ = fuzz_server
    for line in server.log_lines():
        assert json.loads(line)["level"] != "ERROR", line
