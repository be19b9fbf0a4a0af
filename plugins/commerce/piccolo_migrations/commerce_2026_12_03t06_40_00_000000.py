"""Who may read an order: the SHA-256 of the token handed out at checkout, and the customer who was signed in."""

from kernel.sql_migrations import sql_migration

ID = "2026-12-03T06:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "commerce: order read tokens and the ordering customer"

STATEMENTS = [
    "ALTER TABLE orders ADD COLUMN access_token_hash bytea, ADD COLUMN customer_id uuid",
    "CREATE INDEX orders_customer ON orders (tenant_id, customer_id) WHERE customer_id IS NOT NULL",
]


forwards = sql_migration(ID, "commerce", DESCRIPTION, STATEMENTS)
