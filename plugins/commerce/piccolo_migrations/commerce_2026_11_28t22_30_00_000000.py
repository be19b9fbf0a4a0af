"""Products, inventory, carts and orders: tenant-owned, with the stock invariant held by the database."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

from plugins.tenancy.public import tenant_owned

ID = "2026-11-28T22:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "commerce: products, inventory, carts, orders"

TABLES = ["products", "inventory", "carts", "cart_items", "orders", "order_lines"]

CREATE = [
    """CREATE TABLE products (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        sku varchar(64) NOT NULL,
        name varchar(200) NOT NULL,
        price_minor bigint NOT NULL CHECK (price_minor >= 0),
        currency char(3) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE inventory (
        product_id uuid PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
        on_hand integer NOT NULL DEFAULT 0,
        reserved integer NOT NULL DEFAULT 0,
        CONSTRAINT inventory_reserved_within_on_hand CHECK (0 <= reserved AND reserved <= on_hand)
    )""",
    """CREATE TABLE carts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        currency char(3) NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked_out')),
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE cart_items (
        cart_id uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
        product_id uuid NOT NULL REFERENCES products (id),
        quantity integer NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (cart_id, product_id)
    )""",
    """CREATE TABLE orders (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        cart_id uuid NOT NULL UNIQUE REFERENCES carts (id),
        status varchar(16) NOT NULL CHECK (status IN ('pending_payment', 'paid', 'expired')),
        customer_phone varchar(16) NOT NULL,
        currency char(3) NOT NULL,
        total_minor bigint NOT NULL CHECK (total_minor >= 0),
        payment_reference varchar(255),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        paid_at timestamptz
    )""",
    """CREATE TABLE order_lines (
        order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        product_id uuid NOT NULL REFERENCES products (id),
        sku varchar(64) NOT NULL,
        name varchar(200) NOT NULL,
        quantity integer NOT NULL CHECK (quantity > 0),
        unit_price_minor bigint NOT NULL,
        PRIMARY KEY (order_id, product_id)
    )""",
]

# After tenant_owned added `tenant_id`: what is unique per tenant, and what the expiry sweep looks up.
AFTER = [
    "CREATE UNIQUE INDEX products_tenant_sku ON products (tenant_id, sku)",
    "CREATE INDEX orders_pending_expiry ON orders (tenant_id, expires_at) WHERE status = 'pending_payment'",
]


async def create() -> None:
    engine = engine_finder()
    if engine is None:
        raise RuntimeError("no piccolo engine: run migrations with `soko migrate`")
    for statement in [*CREATE, *(sql for table in TABLES for sql in tenant_owned(table)), *AFTER]:
        await engine.run_ddl(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="commerce", description=DESCRIPTION)
    manager.add_raw(create)
    return manager
