"""Settings choose and tune plugins; every problem is reported at once, naming where to fix it."""

from __future__ import annotations

import pytest

from kernel.settings import SettingsError
from tests.kernel.conftest import KernelFactory

TOKEN = {"SOKO_PLUGINS__HELLO__API_TOKEN": "t0ken-value"}


@pytest.mark.usefixtures("hello_installed")
def test_installed_plugin_stays_off_until_enabled(make_kernel: KernelFactory) -> None:
    kernel = make_kernel()
    assert kernel.enabled == []
    assert kernel.manager.get_plugin("hello") is None


@pytest.mark.usefixtures("hello_installed")
def test_enabled_plugin_is_loaded_with_validated_settings(make_kernel: KernelFactory) -> None:
    kernel = make_kernel(["hello"], env=TOKEN, configs={"hello": {"greeting": "Habari"}})
    assert kernel.enabled == ["hello"]
    config = kernel.config("hello")
    assert config.greeting == "Habari"  # type: ignore[attr-defined]
    assert config.api_token.get_secret_value() == "t0ken-value"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("hello_installed")
def test_every_problem_is_reported_at_once(make_kernel: KernelFactory) -> None:
    with pytest.raises(SettingsError) as caught:
        make_kernel(["hello", "nosuchplugin"], configs={"hello": {"greting": "typo"}})
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 3, problems
    assert "'nosuchplugin' is not installed" in problems
    assert "plugins.hello.greting: unknown key" in problems and "config/hello.yaml" in problems
    assert "plugins.hello.api_token: required" in problems
    assert "SOKO_PLUGINS__HELLO__API_TOKEN" in problems


@pytest.mark.usefixtures("hello_installed")
@pytest.mark.parametrize(
    ("configs", "env"),
    [
        ({"hello": {"enabled": False}}, TOKEN),
        ({}, TOKEN | {"SOKO_PLUGINS__HELLO__ENABLED": "false"}),
        ({}, TOKEN | {"SOKO_PLUGINS__ENABLED": "[]"}),
    ],
    ids=["yaml-switch", "variable-switch", "variable-allowlist"],
)
def test_plugin_turned_off_outside_settings_toml(make_kernel: KernelFactory, configs: dict, env: dict) -> None:
    kernel = make_kernel(["hello"], env=env, configs=configs)
    assert kernel.manager.get_plugin("hello") is None
    assert kernel.tasks == {}


def test_unknown_kernel_key_and_bad_value(make_kernel: KernelFactory) -> None:
    with pytest.raises(SettingsError) as caught:
        make_kernel(max_body_bytes=0, log_levle="INFO")
    problems = caught.value.problems
    assert any(p.startswith("log_levle: unknown key") for p in problems), problems
    assert any(p.startswith("max_body_bytes:") and "SOKO_MAX_BODY_BYTES" in p for p in problems), problems


def test_redis_deployment_settings_are_checked_together(make_kernel: KernelFactory) -> None:
    """Several URLs need a mode that reads several, Sentinel needs the service name, nothing else takes one."""
    seeds = "redis://127.0.0.1:7000,redis://127.0.0.1:7001"
    with pytest.raises(SettingsError) as caught:
        make_kernel(env={"SOKO_REDIS_URL": seeds})
    assert [p.split(":")[0] for p in caught.value.problems] == ["redis_mode"], caught.value.problems
    assert "set redis_mode to cluster or sentinel" in caught.value.problems[0]
    with pytest.raises(SettingsError, match=r"redis_sentinel_service: .*name the primary"):
        make_kernel(env={"SOKO_REDIS_URL": seeds, "SOKO_REDIS_MODE": "sentinel"})
    kernel = make_kernel(env={"SOKO_REDIS_MODE": "cluster"})  # the variables set so far stay set
    assert type(kernel.redis()).__name__ == "RedisCluster"  # built without I/O: the seeds need not be up
    with pytest.raises(SettingsError, match=r"redis_sentinel_service: .*only read when redis_mode is sentinel"):
        make_kernel(env={"SOKO_REDIS_SENTINEL_SERVICE": "soko"})
    with pytest.raises(SettingsError, match=r"database_pooler: Input should be 'none' or 'transaction'"):
        make_kernel(env={"SOKO_DATABASE_POOLER": "session"})


def test_table_for_a_plugin_that_does_not_exist(make_kernel: KernelFactory) -> None:
    with pytest.raises(SettingsError, match=r"plugins.helo: no installed plugin is called 'helo'"):
        make_kernel(configs={"helo": {"greeting": "x"}})


def test_requires_names_the_missing_plugin(make_kernel: KernelFactory) -> None:
    class Needy:
        requires = ("tenancy",)

    with pytest.raises(SettingsError, match=r"plugin 'needy' requires 'tenancy': add it to plugins.enabled"):
        make_kernel(extra=[("needy", Needy())])


@pytest.mark.usefixtures("hello_installed")
def test_plugin_reads_its_typed_settings_and_keeps_one_state_per_kernel(make_kernel: KernelFactory) -> None:
    from soko_hello.settings import HelloSettings

    kernel, other = make_kernel(["hello"], env=TOKEN), make_kernel(["hello"], env=TOKEN)
    assert kernel.settings_of("hello", HelloSettings).greeting == kernel.config("hello").greeting  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="not SettingsError"):
        kernel.settings_of("hello", SettingsError)  # type: ignore[type-var]
    built: list[object] = []
    first = kernel.state("hello", lambda k: built.append(k) or object())
    assert kernel.state("hello", lambda k: built.append(k) or object()) is first
    assert other.state("hello", lambda k: built.append(k) or object()) is not first
    assert built == [kernel, other]
