"""Real distributed engines for tests, from the machine's packages: a Redis Cluster, a Sentinel-watched primary
and replica, and PgBouncer in transaction mode.

Each starter is a context manager: servers run in a fresh temporary directory on free loopback ports, in process
groups of their own, and are killed and their directory removed on exit, whatever the test did. `require(binary)`
skips a test, saying which binary is missing, when the machine lacks the package (`.ci/run` installs them).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis import Redis
from redis.exceptions import RedisError

from kernel.settings import KernelSettings
from kernel.testing.project import free_port, wait_for

START_TIMEOUT_S = 30.0
SENTINEL_SERVICE = "soko"
# How long a node or primary may be unreachable before the cluster or the Sentinels fail it over. Short, so tests
# see a failover within a few seconds; production keeps Redis's defaults (15 s cluster, 30 s Sentinel) or tunes.
NODE_TIMEOUT_MS = 1000


def require(*binaries: str) -> None:
    """Skip the calling test unless every binary is on PATH (or in /usr/sbin, where Debian puts pgbouncer)."""
    missing = [name for name in binaries if _binary(name) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install redis-server redis-sentinel pgbouncer)")


def _binary(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


@dataclass
class Server:
    """One started engine process and where its output goes."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process group, as a crashed machine would go: no goodbye to replicas or Sentinels."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class _Processes:
    """Processes started under one temporary directory, all killed at the end."""

    root: Path
    servers: list[Server] = field(default_factory=list)

    def start(self, name: str, port: int, argv: list[str], *, user: str | None = None) -> Server:
        log_path = self.root / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, user=user
            )
        server = Server(name, port, process, log_path)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.kill()


@contextmanager
def _processes(prefix: str) -> Iterator[_Processes]:
    root = Path(tempfile.mkdtemp(prefix=f"soko-{prefix}-"))
    processes = _Processes(root)
    try:
        yield processes
    finally:
        processes.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def _start_redis(processes: _Processes, name: str, port: int, *extra: str) -> Server:
    directory = processes.root / name
    directory.mkdir()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    server = processes.start(name, port, [*argv, "--appendonly", "no", *extra])
    _wait_ready(server, "Ready to accept connections")
    return server


def _wait_ready(server: Server, says: str) -> None:
    """Until the server's own log says it is ready: a PING could reach another process that took the port between
    free_port() and bind (this one then exits)."""
    wait_for(
        lambda: says in server.log() or server.process.poll() is not None,
        timeout=START_TIMEOUT_S,
        what=f"{server.name} on {server.port}",
    )
    assert server.process.poll() is None, f"{server.name} exited:\n{server.log()}"


# -- Redis Cluster -------------------------------------------------------------------------------------------------


@dataclass
class RedisClusterEngine:
    """Three primaries and three replicas on loopback; `url` is what SOKO_REDIS_URL takes in cluster mode."""

    nodes: dict[int, Server]

    @property
    def url(self) -> str:
        return ",".join(f"redis://127.0.0.1:{port}" for port in self.nodes)

    def client(self, port: int) -> Redis:
        return Redis(port=port, socket_timeout=2, socket_connect_timeout=2)

    def primary_of(self, key: str) -> int:
        """The port of the primary that serves `key`'s slot now."""
        for port, server in self.nodes.items():
            if server.process.poll() is None:
                with self.client(port) as client:
                    slot = client.execute_command("CLUSTER KEYSLOT", key)
                    for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
                        if start <= slot <= end:
                            return int(primary[1])
        raise AssertionError(f"no live node knows the slot of {key!r}")

    def healthy(self) -> bool:
        """Every live node says the cluster is ok and knows the whole topology."""
        for port, server in self.nodes.items():
            if server.process.poll() is not None:
                continue
            try:
                with self.client(port) as client:
                    info = client.cluster("INFO")
            except (RedisError, OSError):
                return False
            if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384:
                return False
        return True


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def redis_cluster() -> Iterator[RedisClusterEngine]:
    """`redis-cli --cluster create` over six fresh redis-server processes, yielded once every node agrees."""
    require("redis-server", "redis-cli")
    with _processes("cluster") as processes:
        ports = []
        while len(ports) < 6:
            port = _cluster_port()
            if port not in ports:
                ports.append(port)
        cluster_options = ["--cluster-enabled", "yes", "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
        nodes = {
            port: _start_redis(processes, f"node-{port}", port, *cluster_options, "--cluster-config-file", "nodes.conf")
            for port in ports
        }
        create = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert create.returncode == 0, f"redis-cli --cluster create failed:\n{create.stdout}{create.stderr}"
        engine = RedisClusterEngine(nodes)
        wait_for(engine.healthy, timeout=START_TIMEOUT_S, what="the cluster to be ok on every node")
        wait_for(lambda: _replicas_synced(engine), timeout=START_TIMEOUT_S, what="every replica to sync")
        yield engine


def _replicas_synced(engine: RedisClusterEngine) -> bool:
    return all(_link_up(port) for port in engine.nodes)


def _link_up(port: int) -> bool:
    """A primary, or a replica whose link to its primary is up (its first full sync is done)."""
    with Redis(port=port, socket_timeout=2) as client:
        info = client.info("replication")
    return info["role"] != "slave" or info.get("master_link_status") == "up"


# -- Redis Sentinel ------------------------------------------------------------------------------------------------


@dataclass
class RedisSentinelEngine:
    """A primary, one replica and three Sentinels watching them as `SENTINEL_SERVICE`."""

    primary: Server
    replica: Server
    sentinels: list[Server]
    service: str = SENTINEL_SERVICE

    @property
    def url(self) -> str:
        """SOKO_REDIS_URL in sentinel mode: the Sentinels, comma-separated."""
        return ",".join(f"redis://127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def primary_port(self) -> int | None:
        """Where the Sentinels (the first that answers) say the primary is now."""
        for sentinel in self.sentinels:
            if sentinel.process.poll() is not None:
                continue
            try:
                with Redis(port=sentinel.port, socket_timeout=1) as client:
                    address = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.service)
            except (RedisError, OSError):
                continue
            if address:
                return int(address[1])
        return None

    def ready(self) -> bool:
        """Every Sentinel knows the replica and the two other Sentinels: a failover can be agreed on."""
        for sentinel in self.sentinels:
            with Redis(port=sentinel.port, socket_timeout=1) as client:
                master = client.sentinel_master(self.service)
                if int(master["num-slaves"]) < 1 or int(master["num-other-sentinels"]) < 2:
                    return False
        return True


@contextmanager
def redis_sentinel() -> Iterator[RedisSentinelEngine]:
    require("redis-server", "redis-sentinel")
    with _processes("sentinel") as processes:
        primary = _start_redis(processes, "primary", free_port())
        replica = _start_redis(processes, "replica", free_port(), "--replicaof", "127.0.0.1", str(primary.port))
        sentinels = []
        for number in range(3):
            port = free_port()
            config = processes.root / f"sentinel-{number}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {processes.root}\n"
                f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {NODE_TIMEOUT_MS}\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
            )
            sentinel = processes.start(f"sentinel-{number}", port, ["redis-sentinel", str(config)])
            _wait_ready(sentinel, "+monitor master")
            sentinels.append(sentinel)
        engine = RedisSentinelEngine(primary, replica, sentinels)
        wait_for(lambda: _link_up(replica.port), timeout=START_TIMEOUT_S, what="the replica to finish its first sync")
        wait_for(engine.ready, timeout=START_TIMEOUT_S, what="the Sentinels to find the replica and each other")
        yield engine


# -- PgBouncer -----------------------------------------------------------------------------------------------------


@dataclass
class PgBouncerEngine:
    """PgBouncer in transaction mode in front of one PostgreSQL server, at most `pool_size` server connections
    per database and role."""

    port: int
    pool_size: int
    server: Server

    def url(self, direct_url: str) -> str:
        """`direct_url` (same role, password and database) through PgBouncer instead."""
        parts = urlsplit(direct_url)
        login = parts.netloc.rpartition("@")[0]
        return parts._replace(netloc=f"{login}@127.0.0.1:{self.port}").geturl()


@contextmanager
def pgbouncer(direct_url: str, *, pool_size: int, users: dict[str, str]) -> Iterator[PgBouncerEngine]:
    """PgBouncer (pool_mode = transaction) forwarding every database to `direct_url`'s server; `users` are the
    roles (name -> password) it lets in and logs into PostgreSQL with. As root it runs as `postgres`: PgBouncer
    refuses to run as root."""
    require("pgbouncer")
    target = urlsplit(direct_url)
    with _processes("pgbouncer") as processes:
        user = "postgres" if os.geteuid() == 0 else None
        port = free_port()
        (processes.root / "users.txt").write_text("".join(f'"{name}" "{word}"\n' for name, word in users.items()))
        (processes.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={target.hostname or '127.0.0.1'} port={target.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            "auth_type = trust\nauth_file = users.txt\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            "max_client_conn = 2000\nmax_db_connections = 0\nserver_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits\n"
            "pidfile = pgbouncer.pid\n"
        )
        if user is not None:
            shutil.chown(processes.root, user)
            for path in processes.root.iterdir():
                shutil.chown(path, user)
        server = processes.start("pgbouncer", port, [_binary("pgbouncer") or "pgbouncer", "pgbouncer.ini"], user=user)
        _wait_ready(server, f"listening on 127.0.0.1:{port}")
        yield PgBouncerEngine(port, pool_size, server)


# -- Either Redis deployment, as soko's settings name it ---------------------------------------------------------


@dataclass
class RedisDeployment:
    """A started Cluster or Sentinel deployment: the settings soko takes for it, and its primaries."""

    kind: str  # SOKO_REDIS_MODE: cluster or sentinel
    engine: RedisClusterEngine | RedisSentinelEngine

    @property
    def env(self) -> dict[str, str]:
        """SOKO_* variables for soko processes."""
        found = {"SOKO_REDIS_URL": self.engine.url, "SOKO_REDIS_MODE": self.kind, "SOKO_QUEUE_REPLICAS": "1"}
        if isinstance(self.engine, RedisSentinelEngine):
            found["SOKO_REDIS_SENTINEL_SERVICE"] = self.engine.service
        return found

    @property
    def settings(self) -> KernelSettings:
        """The same as kernel settings, for clients built in the test process (`kernel.redis_client`)."""
        return KernelSettings.model_validate({key.removeprefix("SOKO_").lower(): v for key, v in self.env.items()})

    def primary_of(self, key: str) -> int | None:
        """The port of the primary holding `key` now (a Sentinel deployment has one primary for every key)."""
        if isinstance(self.engine, RedisClusterEngine):
            return self.engine.primary_of(key)
        return self.engine.primary_port()

    def kill_primary_of(self, key: str) -> int:
        """SIGKILL the primary holding `key`; its replica is promoted once the cluster or the Sentinels agree."""
        port = self.primary_of(key)
        servers = (
            list(self.engine.nodes.values())
            if isinstance(self.engine, RedisClusterEngine)
            else [self.engine.primary, self.engine.replica]
        )
        next(server for server in servers if server.port == port).kill()
        assert port is not None
        return port


@contextmanager
def redis_deployment(kind: str) -> Iterator[RedisDeployment]:
    """`redis_cluster()` or `redis_sentinel()` by SOKO_REDIS_MODE's name for it."""
    starter = {"cluster": redis_cluster, "sentinel": redis_sentinel}[kind]
    with starter() as engine:
        yield RedisDeployment(kind, engine)
