"""`GET /hello/<name>`: greets, and leaves the slow part to the worker."""

from pydantic import BaseModel
from quart import Blueprint

from kernel import current_kernel, validate_response
from soko_hello.settings import HelloSettings

blueprint = Blueprint("hello", __name__)


class Greeting(BaseModel):
    message: str
    job_id: str


@blueprint.get("/hello/<name>")
@validate_response(Greeting)
async def hello(name: str) -> Greeting:
    """Greet `name` with the configured greeting; the worker logs it too."""
    kernel = current_kernel()
    config = kernel.config("hello")
    assert isinstance(config, HelloSettings)
    job = await kernel.task("hello.greet").kiq(name)
    return Greeting(message=f"{config.greeting}, {name}!", job_id=job.task_id)
