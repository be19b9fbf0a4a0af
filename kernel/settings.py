"""Settings: dynaconf reads the files and the environment, pydantic says what is allowed.

Sources, later wins: `settings.toml` (environments selected by `SOKO_ENV`), `config/*.yaml`, `.env`, then
`SOKO_*` variables with `__` for nesting. The kernel validates its own keys; each enabled plugin validates its
`plugins.<name>` table with its own model. Every problem is collected and reported at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dynaconf import Dynaconf
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from kernel.file_secrets import drop_empty_secrets, is_secret, secrets_in_files


class SettingsError(Exception):
    """The configuration cannot run; `problems` names each one with where to fix it."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in self.problems))


class PluginsTable(BaseModel):
    """`plugins.enabled`: the allowlist; installing a package never enables it."""

    model_config = ConfigDict(extra="allow")

    enabled: list[str] = Field(default_factory=list)


class MetricsSettings(BaseModel):
    """`metrics.*`: where `soko serve` and `soko worker` each serve `/metrics` (docs/operations.md)."""

    model_config = ConfigDict(extra="forbid")

    bind: str | None = Field(default=None, pattern=r"^[^\s/]*:[0-9]{1,5}$")  # host:port; None: no listener
    token: SecretStr | None = None  # when set, a scrape must send `Authorization: Bearer <token>`
    # Also count requests per shop (`soko_tenant_http_requests_total{tenant,status}`): one series per shop and
    # status class, so only for platforms with few shops.
    tenant_label: bool = False


class KernelSettings(BaseModel):
    """The kernel's own keys (top level of `settings.toml`, or `SOKO_<KEY>`)."""

    model_config = ConfigDict(extra="forbid")

    env: str = "development"
    root: str | None = None  # SOKO_ROOT: the directory holding settings.toml and config/ (default: cwd)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database_url: SecretStr | None = None
    database_owner_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    # How SOKO_REDIS_URL is read (kernel/redis_client.py): one server, the seed nodes of a Redis Cluster, or the
    # Sentinels watching the primary named by redis_sentinel_service; URLs comma-separated for the last two.
    redis_mode: Literal["standalone", "cluster", "sentinel"] = Field(default="standalone", validate_default=True)
    redis_sentinel_service: str | None = Field(default=None, validate_default=True)
    # `transaction`: the database URL points at PgBouncer (or another pooler) in transaction mode, so a server
    # connection is ours only inside a transaction: asyncpg's prepared-statement cache is switched off.
    database_pooler: Literal["none", "transaction"] = "none"
    database_pool_min: int = Field(default=1, ge=0)
    database_pool_max: int = Field(default=10, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    # Seconds a request body may take to arrive, read whole before any middleware or view runs: a slower client
    # gets 408 `request_timeout` and holds nothing meanwhile (no database connection, no idempotency claim).
    body_timeout: float = Field(default=10.0, gt=0, le=3_600)
    # How deep a JSON body may nest arrays and objects; deeper is 400 `validation_error` (the parser recurses).
    max_json_depth: int = Field(default=32, ge=1, le=500)
    default_region: str = Field(default="KE", min_length=2, max_length=2)
    queue_name: str = "soko"
    queue_reclaim_after_ms: int = Field(default=60_000, ge=100)
    # An enqueue waits (Redis WAIT) until this many replicas hold the job, at most queue_replica_wait_ms; then a
    # primary that dies right after accepting a job cannot take it along. Fewer replicas in time: accepted anyway,
    # with a warning (a lost replica must not stop the queue). 0: do not wait (a single Redis has no replica).
    queue_replicas: int = Field(default=0, ge=0)
    queue_replica_wait_ms: int = Field(default=500, ge=1)
    bind: str = "127.0.0.1:8000"
    web_workers: int = Field(default=1, ge=1)
    # The ASGI server of `soko serve`: hypercorn (pure Python, the default) or uvicorn (uvloop and httptools: the
    # `fast` extra), with the same guarantees on both (kernel/servers.py). docs/operations.md shows what each costs.
    server: Literal["hypercorn", "uvicorn"] = "hypercorn"
    worker_processes: int = Field(default=1, ge=1)
    trust_request_id: bool = True
    # Seconds in-flight work may take after SIGTERM: requests being answered (`soko serve`), the job running
    # (`soko worker`, which takes no new one). Keep it below your orchestrator's kill timeout (docker stop: 10 s).
    shutdown_grace: float = Field(default=8.0, gt=0, le=3600)
    # The credential store's AES-256-GCM keys, key id -> base64 of 32 random bytes (`openssl rand -base64 32`);
    # environment only. `credentials_key_id` names the one that encrypts (default: the last listed); the others
    # still decrypt until `soko credentials rotate` has re-encrypted everything. Development and test generate one
    # under ./var when none is set.
    credentials_keys: dict[str, SecretStr] = Field(default_factory=dict)
    credentials_key_id: str | None = None
    # Signs the per-tenant webhook URL tokens (`kernel.webhook_path`); environment only, >= 32 bytes of randomness.
    # Changing it invalidates every URL handed out. Development and test generate one under ./var.
    webhook_token_secret: SecretStr | None = None
    # The webhook inbox: an event still unprocessed after this long is enqueued again by the sweep, which runs
    # about this often; after `webhook_max_attempts` failed runs it is quarantined for an operator.
    webhook_retry_seconds: float = Field(default=30.0, gt=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    openapi: bool = True  # serve /openapi.json
    docs: bool = True  # serve the human docs page at /docs (needs openapi)
    # Read by the test suite only: where its PostgreSQL and Redis are (else it starts embedded ones).
    test_database_url: SecretStr | None = None
    test_redis_url: SecretStr | None = None
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    plugins: PluginsTable = Field(default_factory=PluginsTable)

    @field_validator("redis_mode")
    @classmethod
    def _one_url_unless_several_nodes(cls, mode: str, info: ValidationInfo) -> str:
        url = info.data.get("redis_url")
        if mode == "standalone" and url is not None and "," in url.get_secret_value():
            raise ValueError("SOKO_REDIS_URL lists several servers: set redis_mode to cluster or sentinel")
        return mode

    @field_validator("redis_sentinel_service")
    @classmethod
    def _service_with_sentinels(cls, service: str | None, info: ValidationInfo) -> str | None:
        mode = info.data.get("redis_mode")
        if mode == "sentinel" and not service:
            raise ValueError("redis_mode is sentinel: name the primary the Sentinels watch")
        if mode != "sentinel" and service:
            raise ValueError("only read when redis_mode is sentinel")
        return service


@dataclass(frozen=True)
class RawSettings:
    """What dynaconf loaded, keys lower-cased (variables keep upper case otherwise), before validation."""

    root: Path
    env: str
    data: Mapping[str, Any]


# Where a running `soko dev` writes the URLs of its embedded servers, relative to the project root.
EMBEDDED_SERVICES = Path("var") / "embedded.json"
_SERVICE_KEYS = ("database_url", "database_owner_url", "redis_url")


def project_root() -> Path:
    """Where settings.toml and config/ live: `SOKO_ROOT`, else the working directory."""
    return Path(os.environ.get("SOKO_ROOT") or Path.cwd()).resolve()


def load_raw(root: Path | None = None) -> RawSettings:
    """Read files and environment. No validation here: `validate` reports everything at once."""
    root = root or project_root()
    loaded = Dynaconf(
        envvar_prefix="SOKO",
        env_switcher="SOKO_ENV",
        environments=True,
        # Absolute, so dynaconf reads exactly these files: given relative names it also searches the folders above
        # the working directory and the script's (with an inspect.stack() per file, a third of a CLI run).
        settings_files=[str(root / "settings.toml"), str(root / "config" / "*.yaml")],
        root_path=str(root),
        load_dotenv=True,
        dotenv_path=str(root / ".env"),
    )
    data = _lower_keys(loaded.as_dict())
    for dynaconf_own_key in ("dynaconf_merge", "load_dotenv"):
        data.pop(dynaconf_own_key, None)
    env = str(loaded.current_env).lower()
    data["env"] = env
    if env == "development":
        embedded = _embedded_services(root)
        data |= {key: embedded[key] for key in _SERVICE_KEYS if not data.get(key) and embedded.get(key)}
    return RawSettings(root=root, env=env, data=data)


def _embedded_services(root: Path) -> dict[str, str]:
    """The servers of this project's running `soko dev`, if it runs (variables and files win over them)."""
    try:
        found = json.loads((root / EMBEDDED_SERVICES).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def validate_kernel(raw: RawSettings) -> tuple[KernelSettings | None, list[str]]:
    """The kernel's own settings, and every problem with them (a secret set in a file is one)."""
    in_files = secrets_in_files(raw.root, raw.env, {"": KernelSettings})
    try:
        return KernelSettings.model_validate(drop_empty_secrets(raw.data, KernelSettings)), in_files
    except ValidationError as error:
        return None, describe(error, prefix="", model=KernelSettings) + in_files


def plugin_table(raw: RawSettings, name: str) -> dict[str, Any]:
    table = (raw.data.get("plugins") or {}).get(name) or {}
    return {key: value for key, value in table.items() if key != "enabled"} if isinstance(table, dict) else {}


def switched_off(raw: RawSettings, name: str) -> bool:
    """`plugins.<name>.enabled: false` in a YAML file or variable turns a listed plugin off."""
    table = (raw.data.get("plugins") or {}).get(name)
    return isinstance(table, dict) and table.get("enabled") is False


def describe(error: ValidationError, *, prefix: str, model: type[BaseModel]) -> list[str]:
    """One line per failing key, saying what is wrong and where to set it."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        dotted = f"{prefix}{path}" if path else prefix.rstrip(".")
        variable = "SOKO_" + dotted.upper().replace(".", "__")
        field = model.model_fields.get(str(item["loc"][0])) if item["loc"] else None
        secret = field is not None and is_secret(field.annotation)
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields)) or "none"
            lines.append(f"{dotted}: unknown key (allowed: {allowed}); remove it from {_files_for(prefix)}")
        elif item["type"] == "missing":
            where = f"the environment variable {variable}" if secret else f"{_files_for(prefix)} or {variable}"
            lines.append(f"{dotted}: required; set it in {where}")
        else:
            where = f"the environment variable {variable}" if secret else f"{_files_for(prefix)} or {variable}"
            lines.append(f"{dotted}: {item['msg']}; fix it in {where}")
    return lines


def _files_for(prefix: str) -> str:
    parts = prefix.split(".")
    if parts[0] == "plugins" and len(parts) > 2:
        return f"config/{parts[1]}.yaml"
    return "settings.toml"


def _lower_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key).lower(): _lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_keys(item) for item in value]
    return value


def masked(value: Any) -> Any:
    """Settings as `soko config show` prints them: secrets replaced, nothing else changed."""
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if isinstance(value, BaseModel):
        return {name: masked(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value
