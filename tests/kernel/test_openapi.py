"""One validation mechanism and an always-current OpenAPI document (issue: OpenAPI for every route)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel
from quart import Blueprint, Response

from kernel import (
    MobileNumber,
    Model,
    PhoneNumber,
    Slug,
    hookimpl,
    validate_querystring,
    validate_request,
    validate_response,
)
from kernel.app import SokoApp

AppFactory = Callable[..., SokoApp]
TOKEN = {"SOKO_PLUGINS__HELLO__API_TOKEN": "x"}


class Customer(Model):
    name: str
    phone: MobileNumber
    shop: Slug
    quantity: int = 1


class Page(Model):
    limit: int = 10


class Stored(BaseModel):
    name: str
    phone: str
    shop: str
    quantity: int


class Customers:
    """A plugin whose routes use the kernel's validation mechanism, as every plugin route should."""

    @hookimpl
    def register_blueprints(self) -> list[Blueprint]:
        blueprint = Blueprint("customers", __name__)

        @blueprint.post("/customers")
        @validate_request(Customer)
        @validate_response(Stored, 201)
        async def create(data: Customer) -> tuple[Stored, int]:
            return Stored(**data.model_dump()), 201

        @blueprint.get("/customers")
        @validate_querystring(Page)
        async def listing(query_args: Page) -> dict[str, Any]:
            return {"limit": query_args.limit, "type": type(query_args.limit).__name__}

        return [blueprint]

    @hookimpl
    def openapi_operation(self, method: str, rule: str) -> dict[str, Any] | None:
        if (method, rule) == ("POST", "/customers"):
            header = {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string"}}
            return {"parameters": [header]}
        return None


async def call(app: SokoApp, method: str, path: str, **kwargs: Any) -> Response:
    async with app.test_app() as test_app:
        return await test_app.test_client().open(path, method=method, **kwargs)


async def spec(app: SokoApp) -> dict[str, Any]:
    response = await call(app, "GET", "/openapi.json")
    assert response.status_code == 200
    return await response.get_json()


PROBLEM = "#/components/schemas/Problem"


def _paths(app: SokoApp) -> set[tuple[str, str]]:
    """Every (METHOD, /path/{param}) the app routes, except the document and docs page themselves."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"openapi", "docs", "docs_asset", "static"}:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes |= {(method, path) for method in rule.methods or () if method not in {"HEAD", "OPTIONS"}}
    return routes


@pytest.mark.usefixtures("hello_installed")
async def test_document_is_valid_openapi_31_and_lists_every_route(make_app: AppFactory) -> None:
    app = make_app(["hello"], extra=[("customers", Customers())], env=TOKEN)
    document = await spec(app)
    validate(document)
    assert document["openapi"].startswith("3.1")
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert listed == _paths(app)
    assert ("GET", "/hello/{name}") in listed
    for item in document["paths"].values():
        for operation in item.values():
            errors = {status: answer for status, answer in operation["responses"].items() if status[0] in "45d"}
            assert errors, f"{operation['operationId']} documents no error"
            # An operation that lists its errors has no catch-all, so an undocumented status is caught.
            assert "default" not in errors or len(errors) == 1, operation["operationId"]
            for answer in errors.values():
                assert answer["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM}
    customers = document["paths"]["/customers"]["post"]["responses"]
    assert {"400", "413", "415"} <= set(customers)
    assert "`validation_error`" in customers["400"]["description"]
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "sessionCookie", "csrfHeader"}
    idempotency = document["paths"]["/customers"]["post"]["parameters"]
    assert {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string"}} in idempotency


@pytest.mark.usefixtures("hello_installed")
async def test_commerce_links_walk_from_a_cart_to_its_order(make_app: AppFactory) -> None:
    document = await spec(make_app(["tenancy", "auth", "outbox", "commerce", "idempotency"]))
    operations = {
        operation["operationId"]: operation for item in document["paths"].values() for operation in item.values()
    }
    linked = {
        link["operationId"]
        for operation in operations.values()
        for answer in operation["responses"].values()
        for link in answer.get("links", {}).values()
    }
    assert linked <= set(operations)
    walk = ["post_commerce_create_cart", "post_commerce_add_item", "post_commerce_check_out", "get_commerce_get_order"]
    for source, target in itertools.pairwise(walk):
        links = operations[source]["responses"]["201"]["links"]
        assert target in {link["operationId"] for link in links.values()}, (source, target)
    checkout = operations["post_commerce_check_out"]["responses"]
    assert "default" not in checkout
    assert {"400", "404", "409"} <= set(checkout)
    assert "`tenant_not_found`" in checkout["404"]["description"]
    # Two plugins' answers under one status are joined, not one hiding the other.
    assert "`validation_error`" in checkout["400"]["description"]
    assert "`idempotency_key_missing`" in checkout["400"]["description"]


async def test_disabled_plugin_routes_are_absent(make_app: AppFactory) -> None:
    document = await spec(make_app(["hello"], env=TOKEN, configs={"hello": {"enabled": False}}))
    assert not any(path.startswith("/hello") for path in document["paths"])


async def test_document_and_docs_page_follow_their_settings(make_app: AppFactory) -> None:
    assert (await call(make_app(docs=False), "GET", "/docs")).status_code == 404
    assert (await call(make_app(docs=False), "GET", "/openapi.json")).status_code == 200
    off = make_app(openapi=False)
    assert (await call(off, "GET", "/openapi.json")).status_code == 404
    assert (await call(off, "GET", "/docs")).status_code == 404
    assert (await call(make_app(), "GET", "/docs")).status_code == 200


async def _post(make_app: AppFactory, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = await call(make_app(extra=[("customers", Customers())]), "POST", "/customers", json=body, **kwargs)
    return response.status_code, await response.get_json()


VALID = {"name": "Wanjiru", "phone": "0712 345 678", "shop": "Mama Mboga"}


async def test_unknown_field_is_named(make_app: AppFactory) -> None:
    status, body = await _post(make_app, VALID | {"is_admin": True})
    assert status == 400
    assert body["code"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == ["body.is_admin"]


async def test_wrong_type_names_the_field_and_the_expected_type(make_app: AppFactory) -> None:
    status, body = await _post(make_app, VALID | {"quantity": "many"})
    assert status == 400
    (error,) = body["errors"]
    assert error["field"] == "body.quantity"
    assert "integer" in error["message"]


@pytest.mark.parametrize(
    "written", ["0712 345 678", "+254712345678", "254712345678", "0712-345-678", "(0712) 345678", "712345678"]
)
async def test_kenyan_phone_in_any_common_format_is_stored_as_e164(make_app: AppFactory, written: str) -> None:
    status, body = await _post(make_app, VALID | {"phone": written})
    assert status == 201, body
    assert body["phone"] == "+254712345678"
    assert body["shop"] == "mama-mboga"


@pytest.mark.parametrize("written", ["0712 345 67", "07123456789", "not a phone", "+254 20 1234567"])
async def test_invalid_or_non_mobile_phone_is_refused(make_app: AppFactory, written: str) -> None:
    status, body = await _post(make_app, VALID | {"phone": written})
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["body.phone"]


async def test_strings_are_trimmed_and_control_characters_removed(make_app: AppFactory) -> None:
    status, body = await _post(make_app, VALID | {"name": "  Wan\x00jiru\u202e\x1b  "})
    assert status == 201
    assert body["name"] == "Wanjiru"


async def test_query_parameters_are_coerced_or_refused(make_app: AppFactory) -> None:
    app = make_app(extra=[("customers", Customers())])
    ok = await call(app, "GET", "/customers?limit=5")
    assert await ok.get_json() == {"limit": 5, "type": "int"}
    bad = await call(app, "GET", "/customers?limit=five")
    assert bad.status_code == 400
    assert [e["field"] for e in (await bad.get_json())["errors"]] == ["query.limit"]


async def test_a_body_that_is_not_json_is_415(make_app: AppFactory) -> None:
    response = await call(make_app(extra=[("customers", Customers())]), "POST", "/customers", data=b"name=x")
    assert response.status_code == 415
    assert (await response.get_json())["code"] == "unsupported_media_type"


def test_plain_phone_type_accepts_landlines() -> None:
    class Contact(Model):
        phone: PhoneNumber

    assert Contact(phone="020 1234567").phone == "+254201234567"


async def test_docs_assets_come_from_the_pinned_package_and_the_page_picks_a_store(make_app: AppFactory) -> None:
    app = make_app()
    page = await call(app, "GET", "/docs")
    bundle = await call(app, "GET", "/docs/assets/swagger-ui-bundle.js")
    initializer = await call(app, "GET", "/docs/assets/docs.js")
    elsewhere = await call(app, "GET", "/docs/assets/index.html")
    text = (await page.get_data()).decode()
    assert "cdnjs" not in text and 'id="soko-tenant"' in text and 'data-header="X-Tenant-ID"' in text
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in await bundle.get_data()
    assert b"requestInterceptor" in await initializer.get_data()
    assert elsewhere.status_code == 404
