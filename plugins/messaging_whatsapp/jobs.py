"""The worker's side: the send job of one message, and the sweep that retries due and abandoned sends.

Both carry their tenant in the job's labels (the kernel binds it); neither holds a transaction across a Graph
call. A job that finds its message already taken, sent or failed does nothing: delivery is at least once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kernel import Kernel, NoTenant, tenant_id_var
from plugins.messaging_whatsapp import delivery, store
from plugins.messaging_whatsapp.runtime import runtime_of

SWEEP_BATCH = 100


def _tenant() -> str:
    tenant_id = tenant_id_var.get()
    if tenant_id is None:
        raise NoTenant("a WhatsApp job carries no tenant: enqueue it from a tenant's request or job")
    return str(tenant_id)


def send_task(kernel: Kernel) -> Callable[[str], Awaitable[None]]:
    async def send(message_id: str) -> None:
        """Attempt the message once; a retry waits for the sweep at its backoff time."""
        await delivery.attempt(runtime_of(kernel), _tenant(), message_id)

    return send


def sweep_task(kernel: Kernel) -> Callable[[], Awaitable[None]]:
    async def sweep() -> None:
        """Attempt every due message of the tenant: retries whose time came and sends a dead worker abandoned."""
        tenant_id = _tenant()
        runtime = runtime_of(kernel)
        async with kernel.tenant_transaction(tenant_id):
            due = await store.due(kernel, SWEEP_BATCH)
        for message_id in due:
            await delivery.attempt(runtime, tenant_id, message_id)

    return sweep
