"""`GET /hello/<name>`: greets, and leaves the slow part to the worker."""

from quart import Blueprint

from kernel import current_kernel
from soko_hello.settings import HelloSettings

blueprint = Blueprint("hello", __name__)


@blueprint.get("/hello/<name>")
async def hello(name: str) -> dict[str, str]:
    kernel = current_kernel()
    config = kernel.config("hello")
    assert isinstance(config, HelloSettings)
    job = await kernel.task("hello.greet").kiq(name)
    return {"message": f"{config.greeting}, {name}!", "job_id": job.task_id}
