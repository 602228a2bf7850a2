"""The deployment files (compose.yaml, deploy/): never run here (no Docker engine), so they
are checked by reading them: every variable set is a real setting (or one the image reads),
with a valid value; the proxy, Prometheus and health checks point at what the bot serves."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import REGISTRY

import bot.metrics  # noqa: F401 - registers the bot's metrics
from bot.__main__ import COMMANDS
from bot.heartbeat import probe_url
from bot.settings import BotSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Variables the other images read (postgres's entrypoint; Caddy reads those its Caddyfile
# names as {$NAME}, checked below)
IMAGE_VARIABLES = {"postgres": {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    """deploy/env.example, the values compose interpolates."""
    lines = (DEPLOY / "env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def bot_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the bot's image."""
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("newsbot")
    }


def interpolate(value: str, env: dict[str, str]) -> str:
    return INTERPOLATION.sub(lambda m: env.get(m.group(1), ""), value)


def test_every_variable_set_for_the_bot_is_a_setting_with_a_valid_value(
    compose: dict[str, Any], example_env: dict[str, str]
) -> None:
    settings = {name.upper() for name in BotSettings.model_fields}
    services = bot_services(compose)
    assert {"web-1", "web-2", "web-3", "worker"} <= set(services)
    for name, service in services.items():
        environment = service["environment"]
        unknown = set(environment) - settings
        assert not unknown, f"{name} sets {unknown}, which are not settings"
        values = {k.lower(): interpolate(str(v), example_env) for k, v in environment.items()}
        BotSettings.model_validate(values)  # raises when a value is invalid
    for variable in INTERPOLATION.findall((ROOT / "compose.yaml").read_text()):
        assert variable in example_env, f"{variable} is missing from deploy/env.example"


def test_other_images_get_only_variables_they_read(compose: dict[str, Any]) -> None:
    caddy = set(re.findall(r"\{\$(\w+)\}", (DEPLOY / "Caddyfile").read_text()))
    for name, service in compose["services"].items():
        if name in bot_services(compose):
            continue
        image = service["image"].split(":")[0]
        allowed = caddy if image == "caddy" else IMAGE_VARIABLES.get(image, set())
        assert set(service.get("environment", {})) <= allowed, name
        if image == "caddy":
            assert caddy <= set(service["environment"]), "the Caddyfile reads unset variables"


def test_the_bot_services_run_real_commands_and_reach_postgres_and_redis(
    compose: dict[str, Any], example_env: dict[str, str]
) -> None:
    services = compose["services"]
    for name, service in bot_services(compose).items():
        command = service["command"]
        assert command[:3] == ["python", "-m", "bot"] and command[3] in COMMANDS, name
        environment = {k: interpolate(v, example_env) for k, v in service["environment"].items()}
        assert urlsplit(environment["DATABASE_URL"]).hostname in services
        assert urlsplit(environment["REDIS_URL"]).hostname in services


def test_health_checks_ask_readyz_where_each_process_serves_it(compose: dict[str, Any]) -> None:
    """`python -m bot healthcheck --ready` asks WEBHOOK_PORT when WEBHOOK_URL is set, else
    METRICS_PORT: each service must serve its probes on the port that picks."""
    for name, service in bot_services(compose).items():
        assert service["healthcheck"]["test"][-2:] == ["healthcheck", "--ready"], name
        environment = service["environment"]
        settings = SimpleNamespace(
            webhook_url=environment.get("WEBHOOK_URL"),
            webhook_port=int(environment.get("WEBHOOK_PORT", 8080)),
            metrics_port=int(environment["METRICS_PORT"])
            if "METRICS_PORT" in environment
            else None,
        )
        url = probe_url(settings, ready=True)
        assert url is not None, f"{name} serves no probes"
        assert url.endswith("/readyz")
        assert str(urlsplit(url).port) in service["expose"], name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '"python", "-m", "bot", "healthcheck"' in dockerfile


def test_the_proxy_and_prometheus_reach_every_web_replica(compose: dict[str, Any]) -> None:
    web = {f"{name}:8080" for name in bot_services(compose) if name.startswith("web-")}
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None and set(upstreams.group(1).split()) == web
    assert "health_uri /readyz" in caddyfile
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [web_job] = [job for job in prometheus["scrape_configs"] if job["job_name"] == "newsbot-web"]
    assert set(web_job["static_configs"][0]["targets"]) == web
    [worker_job] = [j for j in prometheus["scrape_configs"] if j["job_name"] == "newsbot-worker"]
    assert worker_job["dns_sd_configs"][0]["port"] == int(
        compose["services"]["worker"]["environment"]["METRICS_PORT"]
    )


def test_alert_rules_use_metrics_the_bot_exports() -> None:
    exported = {sample.name for family in REGISTRY.collect() for sample in family.samples} | {
        family.name for family in REGISTRY.collect()
    }
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"][0]["rules"]
    assert len(rules) >= 3
    for rule in rules:
        used = set(re.findall(r"\bnewsbot_\w+", rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)
