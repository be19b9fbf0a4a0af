"""`soko users`: create a store's staff users. The password is prompted for (hidden) or read from stdin, never
taken as an argument, which would land in shell history and the process list."""

from __future__ import annotations

import asyncio
import sys

import click
from pydantic import TypeAdapter, ValidationError

from kernel import Kernel
from plugins.auth import staff
from plugins.auth.principal import Role
from plugins.tenancy.public import tenant_scope

_EMAIL = TypeAdapter(str)


def users_group(kernel: Kernel) -> click.Group:
    @click.group("users")
    def users() -> None:
        """Manage a store's staff users."""

    @users.command("create")
    @click.option("--tenant", required=True, help="the store's slug or id")
    @click.option("--email", required=True, help="the staff member's e-mail address (their login)")
    @click.option("--role", type=click.Choice([Role.OWNER.value, Role.STAFF.value]), default=Role.STAFF.value)
    @click.option("--password-stdin", is_flag=True, help="read the password from stdin instead of prompting")
    def create(tenant: str, email: str, role: str, password_stdin: bool) -> None:
        """Create a staff user of TENANT; prompts for the password unless --password-stdin."""
        if "@" not in email or any(char.isspace() for char in email):
            raise click.ClickException(f"validation_error: {email!r} is not an e-mail address")
        password = _password(password_stdin)

        async def created() -> staff.StaffRecord:
            async with kernel.running(), tenant_scope(kernel, tenant):
                return await staff.create(email.strip(), password, Role(role))

        try:
            record = asyncio.run(created())
        except (LookupError, ValueError, ValidationError) as error:
            raise click.ClickException(f"validation_error: {error}") from None
        except staff.StaffExists:
            raise click.ClickException(f"user_exists: {tenant} already has a user {email}") from None
        click.echo(f"{record.id}  {record.email}  {record.role.value}")

    return users


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
