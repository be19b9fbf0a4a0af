"""The one place soko builds Redis clients, for one server, a Redis Cluster or a Sentinel-watched primary.

`SOKO_REDIS_MODE` says how `SOKO_REDIS_URL` is read:
- `standalone`: one `redis://` URL (database number, credentials and `rediss://` as redis-py reads them).
- `cluster`: comma-separated seed nodes; the client discovers the rest (CLUSTER SLOTS), follows MOVED/ASK and
  rediscovers the topology after a failover. Keys a Lua script touches together share a `{hash tag}`.
- `sentinel`: comma-separated Sentinels; the client asks them for the primary `SOKO_REDIS_SENTINEL_SERVICE` names
  before each new connection, so after a failover the next connection goes to the promoted replica.

Credentials and TLS (`rediss://`) come from the first URL and apply to every node, and to the Sentinels (managed
Sentinels usually share the data nodes' password); a Sentinel URL's path may name the database (`/2`), a Cluster
has database 0 only. Every caller passes its own connection options (timeouts, retries, client name), so one
client kind serves the limiter's 100 ms budget and the queue's blocking reads alike. Building a client does no I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import SplitResult, urlsplit

from redis.asyncio import Redis, RedisCluster, Sentinel
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import RedisError

from kernel.settings import KernelSettings

RedisClient = Redis | RedisCluster
DEFAULT_PORT = {"standalone": 6379, "cluster": 6379, "sentinel": 26379}


class RedisNotConfigured(RuntimeError):
    """No `SOKO_REDIS_URL`: the caller needs Redis and says what for."""


def redis_client(settings: KernelSettings, **options: Any) -> RedisClient:
    """A client for the configured Redis, with `options` (redis-py connection keywords) on every connection."""
    if settings.redis_url is None:
        raise RedisNotConfigured("no Redis is configured: set SOKO_REDIS_URL")
    urls = [url.strip() for url in settings.redis_url.get_secret_value().split(",") if url.strip()]
    if settings.redis_mode == "standalone":
        return Redis.from_url(urls[0], **options)
    nodes = [urlsplit(url) for url in urls]
    port = DEFAULT_PORT[settings.redis_mode]
    auth = _auth(nodes[0])
    if settings.redis_mode == "cluster":
        startup = [ClusterNode(node.hostname or "127.0.0.1", node.port or port) for node in nodes]
        return RedisCluster(startup_nodes=startup, **auth, **options)
    assert settings.redis_sentinel_service is not None  # the settings refuse sentinel mode without it
    sentinels = [(node.hostname or "127.0.0.1", node.port or port) for node in nodes]
    timeouts = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options}
    sentinel = Sentinel(sentinels, sentinel_kwargs=auth | timeouts)
    database = nodes[0].path.strip("/")
    return sentinel.master_for(
        settings.redis_sentinel_service, db=int(database) if database.isdigit() else 0, **auth, **options
    )


@asynccontextmanager
async def opened(client: RedisClient) -> AsyncIterator[RedisClient]:
    """`client` for a lifespan: a Cluster client learns the topology first, then it is closed at exit.

    redis-py 8.1's RedisCluster discovers the cluster on its first command; when many requests send their first
    commands at once, the discovery closes the seed-node connections the others are using and most of them fail.
    Discovering once before serving avoids that. Best effort: a Redis that is down now is found by the first
    command later, as with a single server, so starting never needs Redis up."""
    if isinstance(client, RedisCluster):
        with suppress(RedisError, OSError):
            await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


def _auth(url: SplitResult) -> dict[str, Any]:
    """What the first URL says about credentials and TLS, as redis-py keywords."""
    found: dict[str, Any] = {}
    if url.username:
        found["username"] = url.username
    if url.password:
        found["password"] = url.password
    if url.scheme == "rediss":
        found["ssl"] = True
    return found
