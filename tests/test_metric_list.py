"""GET /api/metrics: ordered by name, literal case-sensitive prefix, limit/offset paging."""

import pytest


def get(client, auth, path, **params):
    return client.get(path, query_string=params, headers=auth)


def test_list_is_ordered_by_name_with_type_and_created_at(client, auth):
    for name in ("b.two", "a.one", "B.upper"):
        client.post("/api/metrics/counter", json={"name": name}, headers=auth)
    client.post("/api/metrics/value", json={"name": "c.three", "value": 1}, headers=auth)
    body = get(client, auth, "/api/metrics").get_json()
    assert [m["name"] for m in body["data"]] == ["B.upper", "a.one", "b.two", "c.three"]
    assert body["data"][3]["type"] == "value"
    assert body["data"][0]["created_at"].endswith("Z")
    assert (body["limit"], body["offset"], body["success"]) == (100, 0, True)


def test_list_filters_by_prefix_literally(client, auth):
    for name in ("app_a.x", "appXa.y", "app_b", "other"):
        client.post("/api/metrics/counter", json={"name": name}, headers=auth)
    body = get(client, auth, "/api/metrics", prefix="app_").get_json()
    assert [m["name"] for m in body["data"]] == ["app_a.x", "app_b"]


def test_list_pages_with_limit_and_offset(client, auth):
    names = [f"page.{i:02d}" for i in range(7)]
    items = [{"name": n, "type": "counter"} for n in names]
    client.post("/api/metrics/batch", json={"metrics": items}, headers=auth)
    first = get(client, auth, "/api/metrics", limit=3).get_json()
    last = get(client, auth, "/api/metrics", limit=3, offset=6).get_json()
    assert [m["name"] for m in first["data"]] == names[:3] and first["has_more"] is True
    assert [m["name"] for m in last["data"]] == names[6:] and last["has_more"] is False


@pytest.mark.parametrize("params", [{"limit": 1001}, {"limit": 0}, {"offset": -1}, {"limit": "x"}])
def test_list_refuses_bad_paging(client, auth, params):
    response = get(client, auth, "/api/metrics", **params)
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]) == set(params)


def test_list_prefix_is_case_sensitive(client, auth):
    for name in ("T.upper", "t.lower", "T.second"):
        client.post("/api/metrics/counter", json={"name": name}, headers=auth)
    body = get(client, auth, "/api/metrics", prefix="T.").get_json()
    assert [m["name"] for m in body["data"]] == ["T.second", "T.upper"]


def test_list_prefix_outside_the_name_alphabet_matches_nothing(client, auth):
    client.post("/api/metrics/counter", json={"name": "api.hits"}, headers=auth)
    assert get(client, auth, "/api/metrics", prefix="api").get_json()["data"] != []
    assert get(client, auth, "/api/metrics", prefix="api hits%").get_json()["data"] == []


def test_list_refuses_an_absurd_offset(client, auth):
    response = get(client, auth, "/api/metrics", offset=10**30)
    assert response.status_code == 400 and "offset" in response.get_json()["error"]["details"]


@pytest.mark.parametrize("prefix", ["é", "ÿ", "😀", "a b"])
def test_list_prefix_with_characters_no_name_has_is_an_empty_page(client, auth, prefix):
    client.post("/api/metrics/counter", json={"name": "a.b"}, headers=auth)
    response = get(client, auth, "/api/metrics", prefix=prefix)
    assert (response.status_code, response.get_json()["data"]) == (200, [])


def test_list_empty_parameters_mean_defaults(client, auth):
    body = get(client, auth, "/api/metrics", limit="", offset="", prefix="").get_json()
    assert (body["limit"], body["offset"]) == (100, 0)
