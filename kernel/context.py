"""Who and what the current unit of work is about: a request in the web process, a job in the worker.

Context variables, so the same logging and job-labelling code serves both processes.
"""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("soko_request_id", default=None)
tenant_id_var: ContextVar[str | None] = ContextVar("soko_tenant_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("soko_user_id", default=None)
