"""Every hook soko calls: the whole plugin contract on one page.

Hooks return data and the kernel applies it. Register-style hooks run once, when the kernel is built; nothing in
pluggy runs per request. Implementations may be plain functions or, where a hook says so, return awaitables,
which the kernel awaits. An implementation may take any subset of a hook's arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from contextlib import AbstractAsyncContextManager

    import click
    from pydantic import BaseModel
    from quart import Blueprint

    from kernel.kernel import Kernel
    from kernel.messaging import DeliveryStatus, InboundMessage, MessagingChannel
    from kernel.payments import PaidOrder, PaymentEvent, PaymentProvider
    from kernel.pipeline import RequestMiddleware

hookspec = pluggy.HookspecMarker("soko")

# -- configuration -------------------------------------------------------------------------------------------


@hookspec
def settings_model() -> type[BaseModel]:
    """Return the pydantic model that validates your `plugins.<name>` table (forbid extra keys).

    The kernel validates every enabled plugin's table before anything starts and reports all problems at once;
    `kernel.config("<name>")` then returns the validated instance.
    """


@hookspec
def check_kernel(kernel: Kernel) -> list[str]:
    """Return problems with what the built kernel holds, each naming the setting to fix (a messaging channel or
    payment provider you need that no enabled plugin provides), or an empty list.

    Called once everything is collected, while the kernel is built: `soko config check` and every command then
    report these with the settings problems, before anything starts. Do no I/O here.
    """


# -- lifecycle: the web process and the worker alike ----------------------------------------------------------


@hookspec
def lifespan(kernel: Kernel) -> AbstractAsyncContextManager[None] | None:
    """Return an async context manager for your process-wide I/O (pools, clients), or None.

    Entered in plugin order once the kernel's database and broker are up, exited in reverse. Write the cleanup
    in `try/finally`: code after a bare `yield` is skipped when shutdown is caused by an error.
    """


# -- web -----------------------------------------------------------------------------------------------------


@hookspec
def register_blueprints(kernel: Kernel) -> list[Blueprint]:
    """Return Quart blueprints; name them after your plugin. Disabled plugins' routes do not exist."""


@hookspec
def body_limits(kernel: Kernel) -> Mapping[str, int]:
    """Return `{path: bytes}` for the exact paths whose request bodies may exceed `max_body_bytes`.

    For a platform's webhook that sends large batches (WhatsApp: up to ~3 MB); every other path keeps the limit.
    """


@hookspec
def register_middleware(kernel: Kernel) -> list[RequestMiddleware]:
    """Return request middleware; each declares its `stage`, and the kernel orders and checks them at startup."""


@hookspec
def openapi_operation(kernel: Kernel, method: str, rule: str) -> Mapping[str, Any] | None:
    """Return what your plugin adds to the OpenAPI operation `method rule`, or None.

    Keys: `parameters` (list, e.g. a required `Idempotency-Key` header), `responses` (by status), `security`
    (list of requirements). Called when the document is built, never per request.
    """


# -- worker --------------------------------------------------------------------------------------------------


@hookspec
def register_tasks(kernel: Kernel) -> Mapping[str, Callable[..., Awaitable[Any]]]:
    """Return `{verb: async function}`; each becomes the taskiq task `<plugin>.<verb>`.

    Delivery is at least once, so every task must be idempotent. Enqueue with `kernel.task(name).kiq(...)`.
    """


# -- database ------------------------------------------------------------------------------------------------


@hookspec
def piccolo_app() -> str:
    """Return the dotted path of your piccolo app module (`APP_CONFIG` with app_name equal to the plugin name)."""


# -- command line --------------------------------------------------------------------------------------------


@hookspec
def register_commands(kernel: Kernel) -> list[click.Command]:
    """Return click commands added to `soko` (for example `soko tenants`). Name them after what they manage."""


@hookspec
def dev_seed(kernel: Kernel) -> Awaitable[str | None] | str | None:
    """Seed demo data for `soko dev` after migrations ran; must be safe to run on every start.

    Called in plugin order (tenancy's demo store first). What you return (or await to), if a string, is one line
    `soko dev` prints for the developer, such as a sign-in it created.
    """


@hookspec
def dev_services(kernel: Kernel) -> AbstractAsyncContextManager[None] | None:
    """Return an async context manager that runs a stand-in service for `soko dev` (a PSP's simulator), or None.

    Entered before the web and worker processes start and exited after they stopped; development only.
    """


@hookspec
def tenant_ref(kernel: Kernel, ref: str) -> Awaitable[str | None] | str | None:
    """The id of the tenant an operator named (`acme` or its id), or None: used by kernel commands such as
    `soko credentials set TENANT ...`. The tenancy plugin answers it."""


# -- providers -----------------------------------------------------------------------------------------------


@hookspec
def register_payment_providers(kernel: Kernel) -> list[PaymentProvider]:
    """Return payment providers; `provider.name` is unique and is the `<provider>` of its webhook URL."""


@hookspec
def register_messaging_channels(kernel: Kernel) -> list[MessagingChannel]:
    """Return messaging channels; `channel.name` is unique and is the `<channel>` of its webhook URL."""


# -- domain events (keep them fast: enqueue a task for slow work) --------------------------------------------


@hookspec
def webhook_tenant(kernel: Kernel, receiver: str, event: object) -> Awaitable[str | None] | str | None:
    """The tenant a verified webhook event belongs to, when you can tell (from a stored reference), else None.

    Called by the webhook inbox's job, with no tenant bound, for events whose URL carried no per-tenant token.
    Two plugins naming different tenants, or none naming one, quarantine the event: it is never guessed.
    """


@hookspec
def payment_event(kernel: Kernel, event: PaymentEvent) -> Awaitable[None] | None:
    """A payment changed state, as verified and parsed by its provider. May be delivered more than once.

    Runs in the event's tenant transaction. Raise `kernel.Quarantine` for an event that must never apply (an amount
    that is not the payment's): it is set aside at once; any other exception is retried by the webhook inbox.
    """


@hookspec
def order_paid(kernel: Kernel, order: PaidOrder) -> Awaitable[None] | None:
    """An order was paid (the payments plugin emits it once per order, when the order became paid).

    Runs in the order's tenant transaction: store what must follow (a receipt to send) there, and enqueue its job
    with `after_commit`. An exception rolls the payment back with it, to be retried: keep it to local writes.
    """


@hookspec
def message_received(kernel: Kernel, message: InboundMessage) -> Awaitable[None] | None:
    """An inbound message arrived on a messaging channel. May be delivered more than once."""


@hookspec
def message_status(kernel: Kernel, status: DeliveryStatus) -> Awaitable[None] | None:
    """A sent message's delivery status changed (sent, delivered, read, failed), as verified by its channel.

    May be delivered more than once and out of order (read before delivered): keep the furthest status.
    """
