"""docker-compose.yml and the Dockerfile: valid against the Compose specification, and every command
they run names something that exists in this project.

No Docker engine is needed: the file is checked against the Compose JSON schema, and each command is
resolved the way its program would resolve it (console scripts, `python -m`, `uvicorn module:attr`,
`dramatiq module`, the `deskbridge` sub-commands of the typer app). The checks are plain functions
returning problems, so the tests below can also show that they catch broken files.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from store.secret_box import SecretBox
from tests.conftest import shared_data

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
OUR_SERVICES = {"api", "worker", "scheduler"}
Doc = dict[str, Any]


def load_compose() -> Doc:
    """The file as Compose reads it, with YAML aliases unshared so a test can break one service alone."""
    document: Doc = json.loads(json.dumps(yaml.safe_load(COMPOSE.read_text())))
    return document


def our_image(service: Doc) -> bool:
    """Built from this project's Dockerfile (as opposed to a stock image such as postgres)."""
    return "build" in service


# --- resolving commands -------------------------------------------------------------------------


def console_scripts() -> set[str]:
    return {entry.name for entry in entry_points(group="console_scripts")}


def _module_problems(module: str) -> list[str]:
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    return [] if spec is not None else [f"no module {module!r}"]


def _module_source(module: str) -> ast.Module | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text())


def _defines(tree: ast.Module, name: str) -> bool:
    """Whether a module binds `name` at its top level (without importing it: imports have side effects)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            return True
        if isinstance(node, ast.ImportFrom | ast.Import) and any(
            (alias.asname or alias.name) == name for alias in node.names
        ):
            return True
    return False


def _runs_as_main(tree: ast.Module) -> bool:
    return "__name__ == '__main__'" in ast.unparse(tree).replace('"', "'")


def _import_target_problems(target: str) -> list[str]:
    """`module:attr` as uvicorn and dramatiq take it."""
    module, _, attr = target.partition(":")
    problems = _module_problems(module)
    if problems or not attr:
        return problems
    tree = _module_source(module)
    if tree is None or not _defines(tree, attr):
        return [f"{module!r} does not define {attr!r}"]
    return []


def _python_problems(args: list[str]) -> list[str]:
    if args[:1] == ["-m"] and len(args) >= 2:
        module = args[1]
        problems = _module_problems(module)
        if problems:
            return problems
        tree = _module_source(module)
        if tree is None or not _runs_as_main(tree):
            return [f"`python -m {module}` does nothing: no __main__ block"]
        return []
    if args[:1] == ["-c"] and len(args) >= 2:
        try:
            tree = ast.parse(args[1])
        except SyntaxError as error:
            return [f"python -c: {error}"]
        problems: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    problems += _module_problems(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module:
                problems += _module_problems(node.module)
        return problems
    return [f"unrecognised python invocation {args!r}"]


def _deskbridge_problems(args: list[str]) -> list[str]:
    """Walk the typer app's click tree as the shell would, then let the leaf parse its options."""
    from deskbridge.cli import app

    # typer vendors its own click, so go by shape rather than by click's classes.
    command: Any = typer.main.get_command(app)
    rest = list(args)
    path = ["deskbridge"]
    while hasattr(command, "commands"):
        if not rest:
            return [f"`{' '.join(path)}` needs a sub-command"]
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            return [f"`{' '.join(path)}` has no sub-command {name!r}"]
        command, path = sub, [*path, name]
    try:
        command.make_context(" ".join(path), rest)
    except Exception as error:  # the click usage errors
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        return [f"`{' '.join(path)}`: {message}"]
    return []


def command_problems(argv: list[str]) -> list[str]:
    """What is wrong with running `argv` in our image: an empty list when everything it names exists."""
    if not argv:
        return ["empty command"]
    program, args = argv[0], argv[1:]
    if program in {"python", "python3"}:
        return _python_problems(args)
    if program not in console_scripts():
        return [f"no console script {program!r}"]
    if program == "deskbridge":
        return _deskbridge_problems(args)
    if program in {"uvicorn", "dramatiq"}:
        targets = [arg for arg in args if not arg.startswith("-")]
        if not targets:
            return [f"{program} without an application"]
        return _import_target_problems(targets[0])
    return []


def _argv(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def _health_argv(test: str | list[str]) -> list[str] | None:
    """The command a health check execs in the container, or None for a shell check."""
    parts = _argv(test)
    if parts[:1] == ["CMD"]:
        return parts[1:]
    return None


# --- checks over the whole file -------------------------------------------------------------------


def schema_problems(document: Doc, schema: Doc) -> list[str]:
    """Each place where `document` breaks the Compose schema (a draft-07 schema)."""
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def service_command_problems(document: Doc) -> list[str]:
    """Every command our image runs, the services' and their health checks', resolves."""
    problems = []
    dockerfile = dockerfile_final_stage()
    for name, service in document["services"].items():
        if not our_image(service):
            if "image" not in service:
                problems.append(f"{name}: neither build nor image")
            continue
        if "entrypoint" in service:
            problems.append(f"{name}: an entrypoint bypasses the checked commands")
        command = _argv(service["command"]) if "command" in service else dockerfile.get("CMD", [])
        problems += [f"{name}: {problem}" for problem in command_problems(command)]
        test = service.get("healthcheck", {}).get("test")
        health = _health_argv(test) if test else None
        if health is not None:
            problems += [f"{name} healthcheck: {problem}" for problem in command_problems(health)]
    return problems


def one_shot(service: Doc) -> bool:
    return str(service.get("restart", "no")) == "no"


def healthcheck_problems(document: Doc) -> list[str]:
    """Long-running services have a real health check; one-shots are waited on by exit code instead."""
    services = document["services"]
    problems = []
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        if one_shot(service):
            waited = [
                other
                for other, spec in services.items()
                if isinstance(spec.get("depends_on"), dict)
                and spec["depends_on"].get(name, {}).get("condition") != "service_completed_successfully"
                and name in spec["depends_on"]
            ]
            if waited:
                problems.append(f"{name} is a one-shot but {waited} wait for it other than by its exit")
            continue
        if check.get("disable") in (True, "true") or not check.get("test") or _argv(check["test"])[:1] == ["NONE"]:
            problems.append(f"{name}: no health check")
    for name, service in services.items():
        depends = service.get("depends_on", {})
        if not isinstance(depends, dict):
            problems.append(f"{name}: depends_on without conditions starts before its dependencies are ready")
            continue
        for dependency, spec in depends.items():
            if dependency not in services:
                problems.append(f"{name} depends on unknown service {dependency!r}")
            elif spec.get("condition") == "service_healthy" and not services[dependency].get("healthcheck"):
                problems.append(f"{name} waits for {dependency} to be healthy, which has no health check")
    return problems


def scaling_problems(document: Doc) -> list[str]:
    """`docker compose up --scale worker=N` must work: nothing that two replicas could clash on."""
    worker = document["services"]["worker"]
    problems = [f"worker has {key}, so it cannot be scaled" for key in ("container_name", "ports") if key in worker]
    if worker.get("scale", 1) != 1 or worker.get("deploy", {}).get("replicas", 1) < 1:
        problems.append("worker pins its replica count")
    return problems


# --- the Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    pairs = []
    for entry in logical:
        keyword, _, arguments = entry.partition(" ")
        pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def dockerfile_final_stage(text: str | None = None) -> dict[str, Any]:
    """The last stage's base image, user, CMD and ENTRYPOINT (exec forms parsed as JSON lists)."""
    instructions = dockerfile_instructions(DOCKERFILE.read_text() if text is None else text)
    stage: dict[str, Any] = {}
    for keyword, arguments in instructions:
        if keyword == "FROM":
            stage = {"FROM": arguments.split()[0], "RUN": []}
        elif keyword in {"CMD", "ENTRYPOINT"}:
            try:
                stage[keyword] = json.loads(arguments)
            except json.JSONDecodeError:
                stage[keyword] = arguments  # shell form: a problem of its own
        elif keyword == "USER":
            stage["USER"] = arguments
        elif keyword == "RUN":
            stage["RUN"].append(arguments)
    return stage


def dockerfile_problems(text: str) -> list[str]:
    stage = dockerfile_final_stage(text)
    problems = []
    if not stage.get("FROM", "").startswith("python:3.11-slim"):
        problems.append(f"final stage is FROM {stage.get('FROM')!r}, not python:3.11-slim")
    user = stage.get("USER", "root").split(":")[0]
    if user in {"root", "0"}:
        problems.append("the image runs as root")
    if "ENTRYPOINT" in stage:
        problems.append("an ENTRYPOINT would prefix every compose command")
    cmd = stage.get("CMD")
    if not isinstance(cmd, list):
        problems.append(f"CMD {cmd!r} is not in exec form (a shell as PID 1 swallows SIGTERM)")
    else:
        problems += [f"CMD: {problem}" for problem in command_problems(cmd)]
    installs = " ".join(re.findall(r"pip install[^&;]*", text))
    if "pip install" not in installs:
        problems.append("the project is never installed")
    if "[dev]" in installs or "-e " in installs:
        problems.append("the image installs dev extras or an editable checkout")
    return problems


def wheel_packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


# --- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> Doc:
    path = shared_data("compose-spec.json")
    document: Doc = json.loads(path.read_text())
    return document


def test_the_schema_is_draft_07(schema: Doc) -> None:
    # Its `$schema` (https, no '#') is not one jsonschema recognises, so validator_for would silently
    # pick the newest draft: the validator is chosen by hand, and this says if the schema moves on.
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)


def test_compose_file_follows_the_compose_specification(schema: Doc) -> None:
    assert schema_problems(load_compose(), schema) == []


def test_the_schema_check_catches_mistakes(schema: Doc) -> None:
    broken = load_compose()
    broken["services"]["api"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_ready"
    broken["services"]["scheduler"]["restart"] = ["always"]
    problems = schema_problems(broken, schema)
    assert len(problems) == 3, problems


def test_the_expected_services_are_there() -> None:
    services = load_compose()["services"]
    assert {"postgres", "redis", "api", "worker", "scheduler"} <= set(services)
    assert services["postgres"]["image"].split(":")[1].startswith("16")
    assert services["redis"]["image"].split(":")[1].startswith("7")
    assert all(our_image(services[name]) for name in OUR_SERVICES)


def test_every_command_names_something_that_exists() -> None:
    assert service_command_problems(load_compose()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["python", "-m", "deskbridge.no_such_module"],
        ["python", "-m", "deskbridge.settings"],  # exists, but runs nothing
        ["python", "-c", "import no_such_module"],
        ["uvicorn", "deskbridge.asgi:application", "--port", "8000"],
        ["uvicorn", "deskbridge.nope:app"],
        ["dramatiq", "deskbridge.workers_main"],
        ["deskbridge", "db", "downgrade"],
        ["deskbridge", "db"],
        ["deskbridge", "worker", "--no-such-option"],
        ["gunicorn", "deskbridge.asgi:app"],
        [],
    ],
)
def test_the_command_check_catches_what_does_not_exist(argv: list[str]) -> None:
    assert command_problems(argv) != []


def test_a_broken_service_command_is_reported() -> None:
    broken = load_compose()
    broken["services"]["scheduler"]["command"] = ["deskbridge", "scheduler"]
    broken["services"]["worker"]["healthcheck"]["test"] = ["CMD", "python", "-m", "deskbridge.workerz"]
    problems = service_command_problems(broken)
    assert len(problems) == 2, problems


def test_every_service_has_a_health_check_and_waits_properly() -> None:
    assert healthcheck_problems(load_compose()) == []


def test_the_health_check_rule_catches_a_missing_one() -> None:
    broken = load_compose()
    del broken["services"]["scheduler"]["healthcheck"]
    broken["services"]["worker"]["healthcheck"] = {"disable": True}
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_healthy"
    assert len(healthcheck_problems(broken)) == 3, healthcheck_problems(broken)


def test_our_services_start_after_migrations_on_healthy_stores() -> None:
    services = load_compose()["services"]
    migrate = services["migrate"]
    assert command_problems(_argv(migrate["command"])) == []
    assert _argv(migrate["command"]) == ["deskbridge", "db", "upgrade"]
    for name in OUR_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_our_services_use_the_compose_stores() -> None:
    services = load_compose()["services"]
    for name in [*OUR_SERVICES, "migrate"]:
        environment = services[name]["environment"]
        assert "@postgres:5432/" in environment["DESKBRIDGE_DATABASE_URL"], name
        assert environment["DESKBRIDGE_DATABASE_URL"].startswith("postgresql://"), name
        assert environment["DESKBRIDGE_REDIS_URL"].startswith("redis://redis:6379/"), name


def test_the_worker_can_be_scaled() -> None:
    assert scaling_problems(load_compose()) == []
    broken = load_compose()
    broken["services"]["worker"]["container_name"] = "deskbridge-worker"
    broken["services"]["worker"]["ports"] = ["9191:9191"]
    assert len(scaling_problems(broken)) == 2


def test_the_dockerfile_is_sound() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_the_dockerfile_check_catches_mistakes() -> None:
    text = DOCKERFILE.read_text()
    as_root = re.sub(r"^USER .*$", "", text, flags=re.MULTILINE)
    shell_cmd = re.sub(r"^CMD .*$", "CMD uvicorn deskbridge.asgi:app", text, flags=re.MULTILINE)
    wrong_app = text.replace('"deskbridge", "api"', '"deskbridge", "apis"')
    dev = re.sub(r"(pip install[^&;]*?) \.(\s)", r"\1 -e '.[dev]'\2", text, count=1)
    for broken in (as_root, shell_cmd, wrong_app, dev):
        assert broken != text
        assert dockerfile_problems(broken) != []


def test_the_image_default_is_the_api() -> None:
    api = load_compose()["services"]["api"]
    assert _argv(api.get("command", [])) in ([], dockerfile_final_stage()["CMD"])


def test_the_image_holds_every_package_of_the_wheel() -> None:
    """The build copies each package the wheel is made of, and .dockerignore lets each through."""
    copied = {
        source.rstrip("/")
        for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not arguments.startswith("--")
        for source in arguments.split()[:-1]
    }
    ignore = DOCKERIGNORE.read_text().splitlines()
    for needed in [*wheel_packages(), "pyproject.toml", "README.md"]:
        assert needed in copied, needed
        assert f"!{needed}/" in ignore or f"!{needed}" in ignore, needed


def test_merging_keeps_the_shared_settings() -> None:
    """YAML merge keys are shallow: a service overriding `environment` must merge the shared one back."""
    services = load_compose()["services"]
    shared = copy.deepcopy(services["worker"]["environment"])
    for name in OUR_SERVICES:
        assert shared.items() <= services[name]["environment"].items(), name


# --- production shape: the key, graceful stops, one worker process a container, shared metrics ----

KEY_VARIABLE = "DESKBRIDGE_SECRET_KEY"
REQUIRED = re.compile(r"^\$\{DESKBRIDGE_SECRET_KEY:\?(?P<message>[^}]+)\}$")


def key_problems(document: Doc) -> list[str]:
    """Every service of ours must get the one key, as a required interpolation (compose refuses without it)."""
    problems = []
    for name, service in document["services"].items():
        if not our_image(service):
            continue
        value = str(service.get("environment", {}).get(KEY_VARIABLE, ""))
        found = REQUIRED.match(value)
        if found is None:
            problems.append(f"{name}: {KEY_VARIABLE} is not required (${{{KEY_VARIABLE}:?…}}): {value!r}")
        elif "deskbridge key new" not in found["message"]:
            problems.append(f"{name}: the message does not say how to make a key")
    return problems


def test_every_deskbridge_service_requires_the_one_secret_key() -> None:
    assert key_problems(load_compose()) == []
    values = {
        str(service["environment"][KEY_VARIABLE])
        for service in load_compose()["services"].values()
        if our_image(service)
    }
    assert len(values) == 1  # the same key everywhere


def test_the_key_rule_catches_a_missing_or_optional_key() -> None:
    broken = load_compose()
    del broken["services"]["worker"]["environment"][KEY_VARIABLE]
    broken["services"]["scheduler"]["environment"][KEY_VARIABLE] = "${DESKBRIDGE_SECRET_KEY:-}"
    assert len(key_problems(broken)) == 2, key_problems(broken)


def test_the_command_the_message_gives_makes_a_key_deskbridge_takes() -> None:
    """The shell pipeline the message names prints a Fernet key; `deskbridge key new` exists too."""
    from deskbridge.cli import app  # the CLI only here: the other checks import nothing of ours

    message = REQUIRED.match(str(load_compose()["services"]["api"]["environment"][KEY_VARIABLE]))
    assert message is not None
    pipeline = re.search(r"openssl rand -base64 32 \| tr '\+/' '-_'", message["message"])
    assert pipeline is not None
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key = subprocess.run(["sh", "-c", pipeline.group(0)], capture_output=True, text=True, check=True).stdout.strip()
    Fernet(key)  # raises if it is not a Fernet key
    SecretBox([key])
    printed = CliRunner().invoke(app, ["key", "new"])
    assert printed.exit_code == 0
    Fernet(printed.stdout.strip())


def test_every_service_has_a_stop_grace_period() -> None:
    services = load_compose()["services"]
    assert [name for name, service in services.items() if "stop_grace_period" not in service] == []


def test_a_worker_container_runs_one_dramatiq_process_and_restarts_alone() -> None:
    worker = load_compose()["services"]["worker"]
    argv = _argv(worker["command"])
    assert argv[:2] == ["dramatiq", "deskbridge.worker_main"]
    assert argv[argv.index("--processes") + 1] == "1"
    assert worker["restart"] == "unless-stopped"
    # Dramatiq finishes what it holds within the grace period Docker gives before SIGKILL.
    shutdown_ms = int(argv[argv.index("--worker-shutdown-timeout") + 1])
    grace = worker["stop_grace_period"]
    assert grace.endswith("s")
    assert shutdown_ms / 1000 < float(grace.removesuffix("s"))


def test_every_deskbridge_process_writes_its_metrics_to_one_shared_volume() -> None:
    document = load_compose()
    folders = set()
    for name in [*OUR_SERVICES, "migrate"]:
        service = document["services"][name]
        folder = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert f"metrics:{folder}" in service["volumes"], name
        folders.add(folder)
    assert len(folders) == 1
    assert "metrics" in document["volumes"]
    # The image makes the folder owned by its user, so a new volume starts writable for it.
    [folder] = folders
    stage = dockerfile_final_stage()
    assert any(folder in run and "-o deskbridge" in run for run in stage["RUN"]), stage["RUN"]
