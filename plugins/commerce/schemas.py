"""The shapes of the shop's answers, for the OpenAPI document and for clients that generate code from it."""

from __future__ import annotations

from pydantic import BaseModel


class Product(BaseModel):
    id: str
    sku: str
    name: str
    price_minor: int
    currency: str
    on_hand: int
    reserved: int
    available: int


class Products(BaseModel):
    products: list[Product]


class CartItem(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int


class Cart(BaseModel):
    id: str
    currency: str
    status: str
    items: list[CartItem]
    total_minor: int


class OrderLine(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price_minor: int


class Order(BaseModel):
    id: str
    status: str
    customer_phone: str
    currency: str
    total_minor: int
    expires_at: str
    paid_at: str | None
    lines: list[OrderLine]


class PlacedOrder(Order):
    """The checkout's answer: the order and the token that reads it (send it as `X-Order-Token`); shown once."""

    access_token: str
