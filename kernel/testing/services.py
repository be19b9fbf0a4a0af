"""Real PostgreSQL and Redis for tests: the servers named by SOKO_TEST_* variables, else embedded ones.

Each test session gets its own database, so runs never see each other's rows; the app role is the one the
kernel's migration creates, so tests exercise row-level security exactly as production does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from kernel.db import with_credentials

APP_ROLE = "soko_app"
# One credentials key for every project of a test session: the session's database is shared, and a rotation
# test must open every credential any test stored in it. A constant, so every process and import agrees.
SESSION_CREDENTIALS_KEY = base64.b64encode(hashlib.sha256(b"soko test session").digest()).decode()
SESSION_CREDENTIALS_KEYS = f'{{session = "{SESSION_CREDENTIALS_KEY}"}}'
APP_PASSWORD = "soko_app"  # noqa: S105 - test-only credentials of a role that exists only in test clusters


@dataclass(frozen=True)
class Servers:
    """Where the test servers are: a superuser URL and a Redis URL."""

    admin_url: str
    redis_url: str


@dataclass(frozen=True)
class Database:
    """A database of its own: the owner runs migrations, the app role serves."""

    owner_url: str
    app_url: str
    name: str


@contextmanager
def servers(var_dir: Path) -> Iterator[Servers]:
    database = os.environ.get("SOKO_TEST_DATABASE_URL")
    redis = os.environ.get("SOKO_TEST_REDIS_URL")
    if database and redis:
        yield Servers(database, redis)
        return
    from kernel.dev import embedded_services

    with embedded_services(var_dir) as embedded:
        yield Servers(database or embedded.database_url, redis or embedded.redis_url)


async def create_database(admin_url: str) -> Database:
    name = f"soko_test_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    owner = urlsplit(admin_url).username or "postgres"
    return Database(
        owner_url=with_credentials(admin_url, user=owner, database=name),
        app_url=with_credentials(admin_url, user=APP_ROLE, password=APP_PASSWORD, database=name),
        name=name,
    )


async def drop_database(admin_url: str, database: Database) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database.name
        )
        await connection.execute(f'DROP DATABASE IF EXISTS "{database.name}"')
    finally:
        await connection.close()
