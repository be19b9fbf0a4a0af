"""Prometheus metrics: what the kernel and plugins count, and how every process's counts reach one scrape.

Metrics are process-wide, like logging: one set of instruments per process, built on first use (`instruments()`),
whatever number of kernels the process holds. `soko serve` and `soko worker` run several processes (hypercorn
and taskiq children); they use prometheus-client's multiprocess mode: `exporting()` (in the parent) gives the
children a fresh directory in `PROMETHEUS_MULTIPROC_DIR`, each child writes its values to memory-mapped files
there, and one listener process on `metrics.bind` sums the files at scrape time. A child that dies and is
restarted leaves its counter files behind, so the totals the operator sees never go down while the command
runs; a restart of the whole command starts from zero, which `rate()` and `increase()` read as a counter reset.

Labels are bounded by construction: route templates (never the raw path), method, status class, and names the
code chooses (task, provider, receiver, policy, channel, outcome). No tenant, phone, id or path is a label.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

from kernel.context import tenant_id_var

# Buckets around the API's latency SLO (99% of requests within 0.5 s, deploy/prometheus/alerts.yml): fine below
# it, where the SLO is decided, coarse above.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route matched (404, 405): never its path


@dataclass(frozen=True)
class Instruments:
    """Every series soko exports; the names are a contract (dashboards and alerts use them)."""

    registry: CollectorRegistry
    http_requests: Counter
    http_duration: Histogram
    http_in_flight: Gauge
    jobs: Counter
    job_duration: Histogram
    payment_intents: Counter
    webhook_deliveries: Counter
    ratelimit_refusals: Counter
    otp_sends: Counter


def _build() -> Instruments:
    registry = CollectorRegistry(auto_describe=True)
    return Instruments(
        registry=registry,
        http_requests=Counter(
            "soko_http_requests",
            "HTTP requests answered, by route template, method and status class (2xx, 4xx, ...).",
            ("route", "method", "status"),
            registry=registry,
        ),
        http_duration=Histogram(
            "soko_http_request_duration_seconds",
            "Time from the request reaching the kernel to its response, by route template and method.",
            ("route", "method"),
            buckets=HTTP_BUCKETS,
            registry=registry,
        ),
        http_in_flight=Gauge(
            "soko_http_requests_in_flight",
            "Requests being handled now, summed over the live web processes.",
            registry=registry,
            multiprocess_mode="livesum",
        ),
        jobs=Counter(
            "soko_jobs",
            "Jobs run by the worker, by task and outcome (success, failure).",
            ("task", "outcome"),
            registry=registry,
        ),
        job_duration=Histogram(
            "soko_job_duration_seconds",
            "Run time of a job, by task.",
            ("task",),
            buckets=JOB_BUCKETS,
            registry=registry,
        ),
        payment_intents=Counter(
            "soko_payment_intents",
            "Payment intent transitions, by provider and the state reached (pending, succeeded, failed, ...).",
            ("provider", "outcome"),
            registry=registry,
        ),
        webhook_deliveries=Counter(
            "soko_webhook_deliveries",
            "Webhook deliveries by receiver and result: accepted, duplicate, rejected, unreadable (at the route); "
            "processed, failed, quarantined (in the inbox job).",
            ("receiver", "result"),
            registry=registry,
        ),
        ratelimit_refusals=Counter(
            "soko_ratelimit_refusals",
            "Requests refused by a rate-limit policy, by policy name.",
            ("policy",),
            registry=registry,
        ),
        otp_sends=Counter(
            "soko_otp_sends",
            "Sign-in codes sent, by channel and result (sent, failed).",
            ("channel", "result"),
            registry=registry,
        ),
    )


_built: list[Instruments] = []  # this process's instruments, built on first use


def instruments() -> Instruments:
    """This process's instruments (built on first use, after `exporting()` chose the value store)."""
    if not _built:
        _built.append(_build())
    return _built[0]


def use_multiprocess_dir(path: str) -> None:
    """Make every instrument built from now on, here and in children, write to `path` (prometheus-client reads
    the variable once, at import, so its value class is chosen again here)."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    values.ValueClass = values.get_value_class()


class RequestMetrics:
    """The per-request counters, with each label set's children cached: `.labels()` costs more than `.inc()`.

    With `per_tenant` (the `metrics.tenant_label` setting) a request with a tenant is also counted in
    `soko_tenant_http_requests_total{tenant,status}`, a series of its own so the bounded ones keep their labels.
    """

    def __init__(self, *, per_tenant: bool = False) -> None:
        self._instruments = instruments()
        self._in_flight = self._instruments.http_in_flight
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._per_tenant = _tenant_requests() if per_tenant else None
        self._tenant_children: dict[tuple[str, int], Any] = {}

    def started(self) -> None:
        self._in_flight.inc()

    def finished(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Count one answered request (call once per `started`); `route` is the matched rule's template, if any."""
        self._in_flight.dec()
        key = (method if method in _METHODS else "other", route or UNMATCHED, status // 100)  # bounded labels only
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._instruments.http_requests.labels(key[1], key[0], f"{key[2]}xx"),
                self._instruments.http_duration.labels(key[1], key[0]),
            )
        children[0].inc()
        children[1].observe(seconds)
        if self._per_tenant is not None and (tenant := tenant_id_var.get()) is not None:
            counted = self._tenant_children.get((tenant, key[2]))
            if counted is None:
                counted = self._tenant_children[tenant, key[2]] = self._per_tenant.labels(tenant, f"{key[2]}xx")
            counted.inc()


_per_tenant: list[Counter] = []  # built only in a process whose settings ask for it


def _tenant_requests() -> Counter:
    if not _per_tenant:
        _per_tenant.append(
            Counter(
                "soko_tenant_http_requests",
                "HTTP requests answered per shop and status class (only with metrics.tenant_label).",
                ("tenant", "status"),
                registry=instruments().registry,
            )
        )
    return _per_tenant[0]


def count_payment_intent(provider: str, outcome: str) -> None:
    """A payment intent reached state `outcome` (the M-Pesa success rate is succeeded over settled)."""
    instruments().payment_intents.labels(provider, outcome).inc()


def count_webhook(receiver: str, result: str, amount: int = 1) -> None:
    """`amount` webhook events from `receiver` ended in `result` (see the metric's help for the results)."""
    if amount:
        instruments().webhook_deliveries.labels(receiver, result).inc(amount)


def count_ratelimit_refusal(policy: str) -> None:
    instruments().ratelimit_refusals.labels(policy).inc()


def count_otp_send(channel: str, result: str) -> None:
    instruments().otp_sends.labels(channel, result).inc()


class JobTimer:
    """Times one job and counts its outcome; the worker's middleware opens one per execution."""

    __slots__ = ("_started", "_task")

    def __init__(self, task: str) -> None:
        self._task = task
        self._started = time.perf_counter()

    def finish(self, outcome: str) -> None:
        found = instruments()
        found.jobs.labels(self._task, outcome).inc()
        found.job_duration.labels(self._task).observe(time.perf_counter() - self._started)


def exported_names() -> Iterator[str]:
    """Every series name a scrape can show (with _total, _bucket, ... suffixes), for checking dashboards."""
    from kernel.metrics_export import QUEUE_SERIES

    for metric in instruments().registry.collect():
        for sample in metric.samples:
            yield sample.name
        if metric.type == "counter":
            yield f"{metric.name}_total"
        if metric.type == "histogram":
            yield from (f"{metric.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    yield from QUEUE_SERIES
