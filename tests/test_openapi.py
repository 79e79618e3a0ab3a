"""The OpenAPI document: served, current in docs/, complete, and true under a fuzzer.

The fuzz test runs schemathesis against a live gunicorn on MariaDB: every operation, positive
and negative examples (derandomized, so a run is repeatable), checking for server errors,
undocumented statuses and content types, responses that break their schema, and invalid
requests that were accepted.
"""

import json
import os
import re

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app import config, create_app
from app.api import openapi
from app.api.errors import ERROR_CODES
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
]
FUZZ_CONFIG = {
    "generation": {
        "mode": "all",
        "max-examples": 50,
        "deterministic": True,
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
    keys = {"api": key, "stat": stat_keys}
    server = Gunicorn({"DATABASE_URL": url, "WEB_CONCURRENCY": "2"}).start()
    yield server, keys
    server.stop()
    check_log(server)
    server.cleanup()
    drop_database(MYSQL_SERVER_URL, name)


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_server):
    server, _ = fuzz_server
    return schemathesis.openapi.from_url(
        server.base + "/openapi.json", config=schemathesis.Config.from_dict(FUZZ_CONFIG)
    )


schema = schemathesis.pytest.from_fixture("fuzz_schema")


def _with_keys(case, keys):
    """A positive StatHat case carries real keys: random ones would only ever find 401/404."""
    if case.meta is None or case.meta.generation.mode.is_negative:
        return
    path = case.operation.path
    if path not in ("/ez", "/c", "/v"):
        return
    fields = {"ezkey": keys["api"]} if path == "/ez" else {"ukey": keys["api"]}
    if path in keys["stat"]:
        fields["key"] = keys["stat"][path]
    if case.method == "POST" and isinstance(case.body, dict):
        case.body.update(fields)
    else:
        case.query = {**(case.query or {}), **fields}


@schema.parametrize()
def test_the_contract_holds_under_fuzzing(case, fuzz_server):
    _, keys = fuzz_server
    _with_keys(case, keys)
    case.call_and_validate(headers={"X-API-Key": keys["api"]}, checks=CHECKS)


def test_fuzzed_server_log_is_clean_json(fuzz_server):
    server, _ = fuzz_server
    for line in server.log_lines():
        assert json.loads(line)["level"] != "ERROR", line
