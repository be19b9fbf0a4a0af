"""The shop's HTTP routes: validate, hand off to one module per job, answer JSON."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from quart import Blueprint, request

from kernel import CleanStr, MobileNumber, Model, current_kernel, openapi_extra, validate_request, validate_response
from plugins.auth.public import Role, current_principal, require_staff
from plugins.commerce import api_docs, carts, catalog, checkout, orders, schemas
from plugins.commerce.settings import CommerceSettings

ORDER_TOKEN_HEADER = "X-Order-Token"  # noqa: S105 - a header name, not a secret
Quantity = Field(gt=0, le=10_000, strict=True)


class NewProduct(Model):
    sku: CleanStr = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: CleanStr = Field(min_length=1, max_length=200)
    price_minor: int = Field(ge=0, le=10**12, strict=True)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    on_hand: int = Field(default=0, ge=0, le=10**9, strict=True)


class Inventory(Model):
    on_hand: int = Field(ge=0, le=10**9, strict=True)


class NewCart(Model):
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class NewItem(Model):
    sku: CleanStr = Field(min_length=1, max_length=64)
    quantity: int = Quantity


class LineQuantity(Model):
    quantity: int = Field(ge=0, le=10_000, strict=True, description="the line's new quantity; 0 removes it")


class Checkout(Model):
    cart_id: CleanStr = Field(min_length=1, max_length=64)
    customer_phone: MobileNumber


def _settings() -> CommerceSettings:
    return current_kernel().settings_of("commerce", CommerceSettings)


def commerce_blueprint() -> Blueprint:
    blueprint = Blueprint("commerce", __name__)

    @blueprint.get("/products")
    @validate_response(schemas.Products)
    async def list_products() -> dict[str, Any]:
        return {"products": await catalog.list_products(current_kernel().connection())}

    @blueprint.post("/carts")
    @openapi_extra(**api_docs.CREATE_CART)
    @validate_request(NewCart)
    @validate_response(schemas.Cart, 201)
    async def create_cart(data: NewCart) -> tuple[dict[str, Any], int]:
        currency = data.currency or _settings().default_currency
        return await carts.create_cart(current_kernel().connection(), currency), 201

    @blueprint.get("/carts/<cart_id>")
    @openapi_extra(**api_docs.GET_CART)
    @validate_response(schemas.Cart)
    async def get_cart(cart_id: str) -> dict[str, Any]:
        return await carts.get_cart(current_kernel().connection(), carts.parse_id(cart_id, "cart"))

    @blueprint.post("/carts/<cart_id>/items")
    @openapi_extra(**api_docs.ADD_ITEM)
    @validate_request(NewItem)
    @validate_response(schemas.Cart, 201)
    async def add_item(cart_id: str, data: NewItem) -> tuple[dict[str, Any], int]:
        cart = carts.parse_id(cart_id, "cart")
        return await carts.add_item(current_kernel().connection(), cart, data.sku, data.quantity, _settings()), 201

    @blueprint.patch("/carts/<cart_id>/items/<sku>")
    @openapi_extra(**api_docs.CHANGE_ITEM)
    @validate_request(LineQuantity)
    @validate_response(schemas.Cart)
    async def change_item(cart_id: str, sku: str, data: LineQuantity) -> dict[str, Any]:
        """Set a line's quantity (0 removes it), e.g. to drop what went out of stock before checking out."""
        cart = carts.parse_id(cart_id, "cart")
        return await carts.set_quantity(current_kernel().connection(), cart, sku, data.quantity, _settings())

    @blueprint.delete("/carts/<cart_id>/items/<sku>")
    @openapi_extra(**api_docs.CHANGE_ITEM)
    @validate_response(schemas.Cart)
    async def remove_item(cart_id: str, sku: str) -> dict[str, Any]:
        """Remove a line from the cart."""
        cart = carts.parse_id(cart_id, "cart")
        return await carts.set_quantity(current_kernel().connection(), cart, sku, 0, _settings())

    @blueprint.post("/checkout")
    @openapi_extra(**api_docs.CHECK_OUT)
    @validate_request(Checkout)
    @validate_response(schemas.PlacedOrder, 201)
    async def check_out(data: Checkout) -> tuple[dict[str, Any], int]:
        cart = carts.parse_id(data.cart_id, "cart")
        principal = current_principal()
        customer = principal.user_id if principal is not None and principal.role is Role.CUSTOMER else None
        placed = await checkout.checkout(
            current_kernel().connection(), cart, data.customer_phone, _settings(), customer_id=customer
        )
        return placed, 201

    @blueprint.get("/orders/<order_id>")
    @openapi_extra(**api_docs.GET_ORDER)
    @validate_response(schemas.Order)
    async def get_order(order_id: str) -> dict[str, Any]:
        """The order, for staff of the store, the customer signed in when it was placed, or whoever sends the
        checkout's `access_token` as `X-Order-Token`; anyone else gets 404 `order_not_found`."""
        principal = current_principal()
        reader = orders.Reader(
            staff=principal is not None and principal.role.is_staff,
            customer_id=principal.user_id if principal is not None and principal.role is Role.CUSTOMER else None,
            token=request.headers.get(ORDER_TOKEN_HEADER),
        )
        return await orders.get_order(current_kernel().connection(), carts.parse_id(order_id, "order"), reader)

    @blueprint.post("/admin/products")
    @openapi_extra(**api_docs.CREATE_PRODUCT)
    @require_staff()
    @validate_request(NewProduct)
    @validate_response(schemas.Product, 201)
    async def create_product(data: NewProduct) -> tuple[dict[str, Any], int]:
        kernel = current_kernel()
        settings = kernel.settings_of("commerce", CommerceSettings)
        product = await catalog.create_product(
            kernel.connection(),
            sku=data.sku,
            name=data.name,
            price_minor=data.price_minor,
            currency=data.currency or settings.default_currency,
            on_hand=data.on_hand,
        )
        return product, 201

    @blueprint.put("/admin/products/<sku>/inventory")
    @openapi_extra(**api_docs.SET_INVENTORY)
    @require_staff()
    @validate_request(Inventory)
    @validate_response(schemas.Product)
    async def set_inventory(sku: str, data: Inventory) -> dict[str, Any]:
        return await catalog.set_on_hand(current_kernel().connection(), sku, data.on_hand)

    return blueprint
