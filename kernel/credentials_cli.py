"""`soko credentials set/show/rotate`: the operator's side of the credential store.

`set` reads one JSON object on stdin (never an argument: arguments end up in shell history and `ps`), validates
it with the receiver's `credentials_model` and stores it encrypted; `show` prints it with secrets masked.
Every failure is one line on stderr naming what to fix, with no secret in it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from kernel.credentials import CredentialsError, masked
from kernel.kernel import Kernel

T = TypeVar("T")


@click.group("credentials")
def credentials() -> None:
    """Each shop's provider and channel credentials, encrypted (docs/plugins.md#credentials)."""


@credentials.command("set")
@click.argument("tenant")
@click.argument("receiver")
def set_(tenant: str, receiver: str) -> None:
    """Store RECEIVER's credentials for TENANT (id or slug) from one JSON object on stdin; prints them masked."""
    values = _read_object(sys.stdin.read())
    kernel = _kernel()

    async def put(tenant_id: str) -> dict[str, Any]:
        return masked(await kernel.credentials.put(tenant_id, receiver, values))

    click.echo(json.dumps(_run(kernel, tenant, put), indent=2))


@credentials.command("show")
@click.argument("tenant")
@click.argument("receiver")
def show(tenant: str, receiver: str) -> None:
    """Print TENANT's credentials for RECEIVER with every secret masked."""
    kernel = _kernel()

    async def get(tenant_id: str) -> dict[str, Any] | None:
        found = await kernel.credentials.get(tenant_id, receiver)
        return None if found is None else masked(found)

    shown = _run(kernel, tenant, get)
    if shown is None:
        _fail(f"{tenant} has no credentials for {receiver}; set them with `soko credentials set {tenant} {receiver}`")
    click.echo(json.dumps(shown, indent=2))


@credentials.command("rotate")
def rotate() -> None:
    """Re-encrypt every shop's credentials under the current key (credentials_key_id), then drop old keys."""
    kernel = _kernel()
    changed = _run(kernel, None, lambda _: kernel.credentials.rotate())
    click.echo(f"re-encrypted {changed} credential row(s) under key {kernel.credentials.keyring.current!r}")


def _kernel() -> Kernel:
    from kernel.cli import load_kernel, require_services

    kernel = load_kernel()
    require_services(kernel)
    return kernel


def _read_object(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        _fail(f"stdin is not JSON ({error.msg} at line {error.lineno} column {error.colno})")
    if not isinstance(document, dict):
        _fail('stdin must hold one JSON object, like {"consumer_key": "..."}')
    return document


def _run(kernel: Kernel, tenant: str | None, action: Callable[[str], Awaitable[T]]) -> T:
    async def inside() -> T:
        async with kernel.running():
            tenant_id = "" if tenant is None else await _tenant_id(kernel, tenant)
            return await action(tenant_id)

    try:
        return asyncio.run(inside())
    except CredentialsError as error:
        _fail(str(error))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc'])) or 'body'}: {item['msg']}" for item in error.errors())
        _fail(f"invalid credentials: {problems}")


async def _tenant_id(kernel: Kernel, ref: str) -> str:
    """A tenant id from what the operator typed: the tenancy plugin answers `tenant_ref` for slugs."""
    for _, found in kernel.call("tenant_ref", kernel=kernel, ref=ref):
        tenant_id = await found if isinstance(found, Awaitable) else found
        if tenant_id:
            return str(tenant_id)
    _fail(f"no tenant has the id or slug {ref!r}")


def _fail(message: str) -> NoReturn:
    click.echo(f"soko: {message}", err=True)
    sys.exit(2)
