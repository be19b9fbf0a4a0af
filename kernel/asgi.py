"""The ASGI app hypercorn serves (`kernel.asgi:app`), built from this process's settings."""

from kernel import tracing
from kernel.app import create_app
from kernel.kernel import build_kernel
from kernel.logs import configure_logging

configure_logging()  # before anything logs, so even build-time records are JSON and masked
kernel = build_kernel()
configure_logging(kernel.settings.log_level)
tracing.configure("web")
app = create_app(kernel)
