"""What commerce's operations answer besides success, and where each success leads (OpenAPI links).

The links walk a shopper's path, create a cart -> add an item -> check out -> read the order, so a client
generator, and the fuzzer's stateful phase, can follow it with the ids the answers carry.
"""

from __future__ import annotations

from typing import Any

from kernel import operation_id, problem_responses

_CART_NOT_FOUND = "`cart_not_found`: no cart has this id"
_PRODUCT_NOT_FOUND = "`product_not_found`: no product has this SKU"
_CART_CHECKED_OUT = "`cart_checked_out`: the cart was checked out; start a new one"


def _link(view: str, method: str = "post", **link: Any) -> dict[str, Any]:
    return {view: {"operationId": operation_id(method, f"commerce.{view}")} | link}


_CART_ID = {"path.cart_id": "$response.body#/id"}
_FIRST_LINE = _CART_ID | {"path.sku": "$response.body#/items/0/sku"}

GET_CART: dict[str, Any] = {"responses": problem_responses({404: _CART_NOT_FOUND})}
CREATE_CART: dict[str, Any] = {
    "links": {
        "201": _link("add_item", parameters=_CART_ID) | _link("get_cart", "get", parameters=_CART_ID),
    }
}
ADD_ITEM: dict[str, Any] = {
    "responses": problem_responses(
        {
            404: f"{_CART_NOT_FOUND}; {_PRODUCT_NOT_FOUND}",
            409: f"{_CART_CHECKED_OUT}; `currency_mismatch`: the product is priced in another currency",
        }
    ),
    "links": {
        "201": _link("check_out", requestBody={"cart_id": "$response.body#/id"})
        | _link("change_item", "patch", parameters=_FIRST_LINE)
        | _link("remove_item", "delete", parameters=_FIRST_LINE)
    },
}
CHANGE_ITEM: dict[str, Any] = {
    "responses": problem_responses(
        {404: f"{_CART_NOT_FOUND}; `cart_item_not_found`: the cart holds no such line", 409: _CART_CHECKED_OUT}
    )
}
CHECK_OUT: dict[str, Any] = {
    "responses": problem_responses(
        {
            404: _CART_NOT_FOUND,
            409: f"{_CART_CHECKED_OUT}; `cart_empty`; `out_of_stock` (with the `sku` that is short)",
        }
    ),
    "links": {
        "201": _link(
            "get_order",
            "get",
            parameters={"path.order_id": "$response.body#/id", "header.X-Order-Token": "$response.body#/access_token"},
        )
    },
}
GET_ORDER: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Order-Token",
            "in": "header",
            "required": False,
            "description": "The checkout's `access_token`, for a customer who was not signed in when ordering",
            "schema": {"type": "string"},
        }
    ],
    "responses": problem_responses(
        {404: "`order_not_found`: no order has this id, or it is not yours (staff, its customer or its token)"}
    ),
}
CREATE_PRODUCT: dict[str, Any] = {
    "responses": problem_responses({409: "`product_exists`: a product has this SKU already"})
}
SET_INVENTORY: dict[str, Any] = {
    "responses": problem_responses(
        {404: _PRODUCT_NOT_FOUND, 409: "`inventory_below_reserved`: unpaid orders hold more than that"}
    )
}
