"""compose.yaml and .env.example, checked without a Docker engine.

What `docker compose config` would do is done here: the example env file is read as compose reads a
.env file, compose.yaml is interpolated with it (${VAR}, ${VAR:-default}, ${VAR:?error}, $$), and the
result is validated against the compose-spec JSON schema (the copy check-jsonschema ships). Semantic
checks follow: services and dependencies that exist, the database URL that matches the database,
ports that match CDS_BIND and the image, only known settings, and, most of all, that the example's
settings, once its REQUIRED values are filled in, make a service that reports ready. Where a `docker`
CLI with compose is installed, `docker compose config` runs on the same files too.
"""
from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from cds_service.config import SETTINGS
from support.helpers import REPO

COMPOSE = REPO / "compose.yaml"
EXAMPLE = REPO / ".env.example"
SERVER_SETTINGS = {"CDS_BIND", "CDS_WORKERS", "CDS_THREADS"}  # gunicorn's, outside config.SETTINGS
KNOWN = {s.name for s in SETTINGS} | SERVER_SETTINGS


class InterpolationError(ValueError):
    pass


def read_env_file(text: str) -> dict[str, str]:
    """NAME=value lines as compose reads them: comments and blank lines skipped, one pair of quotes removed."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
        assert match, f".env line {number} is not NAME=value: {line!r}"
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            assert " #" not in value, f".env line {number}: put comments on their own line"
        values[name] = value
    return values


def required_examples(text: str) -> dict[str, str]:
    """For each `#   NAME=value` example line: NAME -> value (how the example says to fill it in)."""
    return {m.group(1): read_env_file(f"{m.group(1)}={m.group(2)}")[m.group(1)]
            for m in re.finditer(r"^#\s{3}([A-Z_][A-Z0-9_]*)=(.+)$", text, re.M)}


def required_names(text: str) -> list[str]:
    """The setting each `# REQUIRED.` comment block is about (the first NAME= line after it)."""
    names = []
    for block in re.split(r"^# REQUIRED\.", text, flags=re.M)[1:]:
        names.append(re.search(r"^([A-Z_][A-Z0-9_]*)=", block, re.M).group(1))
    return names


_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env: dict[str, str]):
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        escaped, name, op, arg, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        present, current = name in env, env.get(name, "")
        if op in (":-", "-"):
            use_default = not current if op == ":-" else not present
            return interpolate(arg, env) if use_default else current
        if op in (":?", "?"):
            if (not current) if op == ":?" else (not present):
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return current
        return current

    return _VAR.sub(one, value)


def compose_config(env: dict[str, str]) -> dict:
    return interpolate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), env)


def filled_example() -> dict[str, str]:
    text = EXAMPLE.read_text(encoding="utf-8")
    env = read_env_file(text)
    for name, value in required_examples(text).items():
        if not env.get(name):
            env[name] = value
    return env


def compose_schema() -> dict:
    path = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_compose_file_is_valid_against_the_compose_spec():
    config = compose_config(filled_example())
    schema = compose_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)
    errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(config), key=str)
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_the_schema_check_catches_a_broken_file():
    """The check has teeth: a misspelt key and a wrong type are refused."""
    config = compose_config(filled_example())
    config["services"]["cds"]["enviroment"] = {"X": "1"}
    config["services"]["postgres"]["restart"] = ["always"]
    validator = jsonschema.validators.validator_for(compose_schema())(compose_schema())
    messages = " ".join(e.message for e in validator.iter_errors(config))
    assert "enviroment" in messages and "is not of type 'string'" in messages


def test_the_unfilled_example_stops_compose_with_a_clear_message():
    env = read_env_file(EXAMPLE.read_text(encoding="utf-8"))
    with pytest.raises(InterpolationError, match="POSTGRES_PASSWORD"):
        compose_config(env)


def test_services_dependencies_and_the_database_url_fit_together():
    env = filled_example()
    config = compose_config(env)
    services = config["services"]
    assert set(services) == {"cds", "postgres"}
    cds, pg = services["cds"], services["postgres"]
    assert isinstance(cds["build"], str) and (REPO / cds["build"] / "Dockerfile").is_file()
    for name, dep in cds["depends_on"].items():
        assert name in services
        if dep.get("condition") == "service_healthy":
            assert services[name].get("healthcheck"), f"{name} has no health check to wait for"
    url = urlsplit(cds["environment"]["CDS_FEEDBACK_DB"])
    assert url.scheme == "postgresql+psycopg" and url.hostname == "postgres" and url.port == 5432
    assert url.username == pg["environment"]["POSTGRES_USER"] == env["POSTGRES_USER"]
    assert url.password == pg["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == pg["environment"]["POSTGRES_DB"]
    assert "ports" not in pg, "the database is reached by the service only"
    for volume in pg["volumes"]:
        assert volume.split(":")[0] in config["volumes"]
    env_files = [e["path"] if isinstance(e, dict) else e for e in cds["env_file"]]
    assert env_files == [".env"] and (REPO / ".env.example").is_file()
    for named in re.findall(r"[\w.-]*env[\w.-]*\.example\b", COMPOSE.read_text(encoding="utf-8")):
        assert (REPO / named).is_file(), f"compose.yaml names {named}, which does not exist"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", env["POSTGRES_PASSWORD"]), "the example password must fit in a URL"


def test_published_port_matches_cds_bind_and_the_image():
    cds = compose_config(filled_example())["services"]["cds"]
    bind_port = cds["environment"]["CDS_BIND"].rsplit(":", 1)[1]
    host_side, container_side = cds["ports"][0].rsplit(":", 1)[0], cds["ports"][0].rsplit(":", 1)[1]
    assert container_side == bind_port
    assert host_side.startswith("127.0.0.1:"), "publish on loopback; a load balancer terminates TLS"
    assert re.search(rf"^EXPOSE {bind_port}$", (REPO / "Dockerfile").read_text(), re.M)


def test_example_names_only_known_settings_and_every_required_one():
    text = EXAMPLE.read_text(encoding="utf-8")
    env = read_env_file(text)
    compose_env = compose_config(filled_example())["services"]["cds"]["environment"]
    for name in list(env) + list(compose_env):
        if name.startswith("CDS_"):
            assert name in KNOWN, f"{name} is not a setting the service knows"
    required = required_names(text)
    assert {"POSTGRES_PASSWORD", "CDS_PUBLIC_BASE_URL", "CDS_TRUSTED_ISSUERS"} <= set(required)
    for name in required:
        assert name in required_examples(text), f"{name} is REQUIRED but the example shows no value for it"
        assert env[name] == "", f"{name}: leave REQUIRED values empty in the example so nobody ships them"


def _service_env(env: dict[str, str], tmp_path) -> dict:
    """The cds container's CDS_* environment (env_file, then `environment:`), with the store on SQLite."""
    cds = compose_config(env)["services"]["cds"]
    merged = {k: v for k, v in env.items() if k in KNOWN - SERVER_SETTINGS}
    merged.update({k: v for k, v in cds["environment"].items() if k in KNOWN - SERVER_SETTINGS})
    merged["CDS_FEEDBACK_DB"] = str(tmp_path / "fb.sqlite3")  # no PostgreSQL server here; the URL is checked above
    return merged


def test_the_filled_in_example_makes_a_ready_service(tmp_path, monkeypatch):
    from cds_service import create_app

    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    app = create_app(_service_env(filled_example(), tmp_path))
    resp = app.test_client().get("/health/ready")
    assert resp.status_code == 200, resp.get_json()
    assert app.extensions["cds"].cfg["CDS_REQUIRE_JWT"] is True


def test_the_example_as_shipped_is_not_ready_and_says_why(tmp_path, monkeypatch):
    from cds_service import create_app

    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    env = read_env_file(EXAMPLE.read_text(encoding="utf-8"))
    env["POSTGRES_PASSWORD"] = "only-so-that-interpolation-passes"
    resp = create_app(_service_env(env, tmp_path)).test_client().get("/health/ready")
    assert resp.status_code == 503
    problems = " ".join(resp.get_json()["problems"])
    assert "CDS_TRUSTED_ISSUERS" in problems and "CDS_PUBLIC_BASE_URL" in problems


def test_docker_compose_config_where_docker_is_installed(tmp_path):
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no docker CLI with compose here; the schema and semantic checks above stand in for it")
    project = tmp_path / "project"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(".venv*", ".git", "var", "test-artifacts"))
    (project / ".env").write_text("\n".join(f"{k}='{v}'" for k, v in filled_example().items()) + "\n")
    done = subprocess.run([docker, "compose", "config", "--quiet"], cwd=project, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
