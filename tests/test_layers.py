"""The layers of app/ (written down in app/__init__.py): a module imports only from its own
layer and the layers below it, and nothing outside ``db`` touches SQL or an engine."""

import ast

import pytest

from tests.harness import ROOT

# Lowest first; a module may import from its own layer and any before it.
LAYERS = [
    {"core"},
    {"config"},
    {"infra"},
    {"db"},
    {"ingest"},
    {"jobs"},
    {"api"},
    {"blueprints", "commands"},
    {"serve"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
OUTSIDE_THE_STORE = ("sqlalchemy", "pymysql", "sqlite3", "clickhouse_connect", "chdb")


def layer_of(module):
    """The layer of a dotted module name under ``app`` (None for ``app`` itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def modules(root=ROOT):
    """(dotted name, source path) of every module under ``root``/app/."""
    for path in sorted((root / "app").rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        name = ".".join(relative.parts)
        yield name.removesuffix(".__init__"), path


def imports(path):
    """Every module a file imports (``from app import x`` counts as ``app.x``)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "app":
                yield from (f"app.{alias.name}" for alias in node.names)
            else:
                yield node.module


def breaches(root=ROOT):
    """(module, what it imports) for every import that goes up a layer."""
    found = []
    for name, path in modules(root):
        mine = layer_of(name)
        if mine is None:
            continue  # app/__init__.py wires everything
        for target in imports(path):
            theirs = layer_of(target) if target.startswith("app.") else None
            if theirs is not None and theirs != "static" and RANK[theirs] > RANK[mine]:
                found.append((name, target))
    return found


def test_every_module_lives_in_a_known_layer():
    unknown = {layer_of(name) for name, _ in modules()} - set(RANK) - {None, "static"}
    assert not unknown


def test_no_module_imports_a_layer_above_its_own():
    assert breaches() == []


@pytest.mark.parametrize("library", OUTSIDE_THE_STORE)
def test_only_the_store_touches_sql(library):
    users = [
        name
        for name, path in modules()
        if layer_of(name) not in ("db", None)
        and any(t == library or t.startswith(library + ".") for t in imports(path))
    ]
    assert users == []


def test_the_check_sees_a_breach(tmp_path):
    """A made-up tree where the store imports the HTTP edge: the check names that import."""
    (tmp_path / "app" / "db").mkdir(parents=True)
    (tmp_path / "app" / "db" / "store.py").write_text("from app.api.auth import ADMIN\n")
    (tmp_path / "app" / "api").mkdir()
    (tmp_path / "app" / "api" / "auth.py").write_text("from app.db import store\n")
    assert breaches(tmp_path) == [("app.db.store", "app.api.auth")]
