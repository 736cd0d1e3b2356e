"""The deployment files, checked offline (no Docker engine, no cluster).

kustomize output (``kubectl kustomize``; ``$KUBECTL`` picks another kubectl, e.g. Debian's 1.20
with kustomize v2.0.3) is validated against the Kubernetes 1.30 and 1.37 schemas
(kubernetes-validate, strict), the Dockerfile with hadolint, the alert rules with promtool
(syntax and unit tests), and every metric name in the rules and the dashboard against what
``service/metrics.py`` exports. A missing tool fails under CI (``make deploy-tools`` must
have installed it) and is a skip elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings
from service.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PROM = DEPLOY / "prometheus"
# the oldest Kubernetes the manifests promise to work on, and the newest schemas bundled
K8S_VERSIONS = ("1.30.0", "1.37.0")
OVERLAYS = ("staging", "production")
SECRET_SETTINGS = {
    "CODEXEC_ADMIN_KEY",
    "CODEXEC_API_KEY",
    "CODEXEC_REDIS_URL",
    "CODEXEC_RECEIPT_SIGNING_KEY",
}
# what a replica's webhook delivery must never reach, whatever a URL resolves to
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"}
VAR_DIR = "/var/lib/codexec"


def _missing(name: str) -> None:
    msg = f"{name} is not installed: run `make deploy-tools`"
    if os.environ.get("CI"):
        pytest.fail(f"{msg} (CI must install it before `make test`)")
    pytest.skip(msg)


def tool(name: str, env_override: str | None = None) -> str:
    """Path of a command-line tool: ``$env_override``, the venv's bin, or ``$PATH``."""
    if env_override and (override := os.environ.get(env_override)):
        return override
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        _missing(name)
    assert found is not None
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# ---------------------------------------------------------------- Kubernetes (kustomize)


@cache
def _build(target: str) -> tuple[dict[str, Any], ...]:
    kubectl = tool("kubectl", "KUBECTL")
    path = K8S / "base" if target == "base" else K8S / "overlays" / target
    done = run(kubectl, "kustomize", str(path))
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def build(target: str) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize`` renders for base or an overlay."""
    return list(_build(target))


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, pod template) of every workload."""
    for d in docs:
        if d["kind"] == "Deployment":
            yield d["kind"], d["spec"]["template"]
        elif d["kind"] == "CronJob":
            yield d["kind"], d["spec"]["jobTemplate"]["spec"]["template"]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` called ``name``."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def server_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The (only) container of the Deployment."""
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def config_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    return dict(one(docs, "ConfigMap")["data"])


def setting_names() -> set[str]:
    return {"CODEXEC_" + name.upper() for name in Settings.model_fields}


TARGETS = ("base", *OVERLAYS)


@pytest.mark.parametrize("target", TARGETS)
def test_kustomize_output_validates_against_kubernetes_schemas(target: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        _missing("kubernetes-validate")
    docs = build(target)
    kinds = {d["kind"] for d in docs}
    expected = {
        "Deployment",
        "Service",
        "ConfigMap",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "CronJob",
        "ServiceAccount",
    }
    assert expected <= kinds, f"missing: {expected - kinds}"
    for version in K8S_VERSIONS:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                name = f"{doc['kind']}/{doc['metadata']['name']}"
                pytest.fail(f"{target}: {name} is invalid for Kubernetes {version}: {exc.message}")
    assert one(docs, "HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"


@pytest.mark.parametrize("target", TARGETS)
def test_workloads_run_locked_down(target: str) -> None:
    docs = build(target)
    workloads = list(pod_specs(docs))
    assert {kind for kind, _ in workloads} == {"Deployment", "CronJob"}
    for kind, template in workloads:
        spec = template["spec"]
        assert spec.get("automountServiceAccountToken") is False, kind
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True, kind
        assert pod_ctx["runAsUser"] != 0, kind
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault", kind
        for c in spec["containers"]:
            ctx = c["securityContext"]
            where = f"{kind} container {c['name']}"
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert not ctx["capabilities"].get("add"), where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part]), f"{where} {part}"
            assert ":" in c["image"], f"{where}: image without a tag: {c['image']}"


@pytest.mark.parametrize("target", TARGETS)
def test_server_probes_volumes_and_scrape_annotations(target: str) -> None:
    docs = build(target)
    deployment = one(docs, "Deployment")
    template = deployment["spec"]["template"]
    (c,) = template["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["http"]
    assert port == 8787
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ("http", port), probe
    assert c.get("args", []) == ["serve"]
    env = {e["name"]: e for e in c["env"]}
    assert env["CODEXEC_MAINTENANCE_CRON"]["value"] == "off"  # the CronJob runs the roll-up
    config = config_data(docs)
    assert config["CODEXEC_VAR_DIR"] == VAR_DIR
    assert config["CODEXEC_HOST"] == "0.0.0.0"
    assert config["CODEXEC_PORT"] == str(port)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[VAR_DIR]], "the var dir must be an emptyDir"
    assert "/tmp" in mounts
    assert not config["CODEXEC_MODULE_CACHE_DIR"].startswith(VAR_DIR), "cache is in the image"
    notes = template["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert notes["prometheus.io/port"] == str(port)
    assert notes["prometheus.io/path"] == "/metrics"
    labels = template["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        obj = one(docs, kind)
        selector = obj["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), f"{kind} selects no server pod"
    service_port = one(docs, "Service")["spec"]["ports"][0]
    assert service_port["targetPort"] in ("http", port)
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert hpa["minReplicas"] >= 2
    assert one(docs, "PodDisruptionBudget")["apiVersion"] == "policy/v1"


@pytest.mark.parametrize("target", TARGETS)
def test_network_policy_admits_http_and_allows_only_redis_and_dns(target: str) -> None:
    docs = build(target)
    policy = named(docs, "NetworkPolicy", "codexec")["spec"]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {(p["port"], p["protocol"]) for r in policy["ingress"] for p in r["ports"]}
    assert ingress_ports == {(8787, "TCP")}
    egress_ports = {(p["port"], p["protocol"]) for r in policy["egress"] for p in r["ports"]}
    assert egress_ports == {(6379, "TCP"), (53, "UDP"), (53, "TCP")}
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"} == {
        "codexec",
        "codexec-webhooks",
    }


@pytest.mark.parametrize("target", TARGETS)
def test_server_pods_deliver_webhooks_to_public_addresses_only(target: str) -> None:
    """Every server process delivers the webhook outbox: its pods reach public http(s),
    never the cluster, private ranges or the metadata service; the CronJob gets nothing."""
    docs = build(target)
    spec = named(docs, "NetworkPolicy", "codexec-webhooks")["spec"]
    assert spec["policyTypes"] == ["Egress"]
    selector = spec["podSelector"]["matchLabels"]
    assert (
        selector.items()
        <= one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )
    job_labels = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    assert not selector.items() <= job_labels["labels"].items(), "the CronJob sends no webhook"
    (rule,) = spec["egress"]
    assert {(p["port"], p["protocol"]) for p in rule["ports"]} == {(80, "TCP"), (443, "TCP")}
    blocks = [peer["ipBlock"] for peer in rule["to"]]
    assert len(blocks) == len(rule["to"]), "only ipBlock peers"
    v4 = next(b for b in blocks if b["cidr"] == "0.0.0.0/0")
    assert set(v4["except"]) >= PRIVATE_RANGES
    for block in blocks:
        assert block.get("except"), f"{block['cidr']} open to every address"
    # nothing switches the outbox worker off in the server pods (job runners cannot be:
    # CODEXEC_JOB_CONCURRENCY >= 1)
    settings = config_data(docs) | {
        e["name"]: e["value"] for e in server_container(docs)["env"] if "value" in e
    }
    assert settings.get("CODEXEC_WEBHOOK_DELIVERY", "true") == "true"


@pytest.mark.parametrize("target", TARGETS)
def test_rollup_cronjob(target: str) -> None:
    docs = build(target)
    job = one(docs, "CronJob")
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["schedule"] == "0 */6 * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    (c,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["billing", "rollup"]
    assert c["image"] == server_container(docs)["image"]
    env = {e["name"]: e for e in c.get("env", [])}
    assert env["CODEXEC_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "codexec-secrets"
    # production validation of the settings needs the admin key in the job too
    assert env["CODEXEC_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "codexec-secrets"


@pytest.mark.parametrize("target", TARGETS)
def test_secrets_are_references_only(target: str) -> None:
    docs = build(target)
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret may be committed"
    known = setting_names()
    config = config_data(docs)
    assert set(config) <= known, f"not settings: {set(config) - known}"
    assert not set(config) & SECRET_SETTINGS, "secrets must not be in the ConfigMap"
    for kind, template in pod_specs(docs):
        for c in template["spec"]["containers"]:
            for e in c.get("env", []):
                assert e["name"] in known, f"{kind}: {e['name']} is not a setting"
                if e["name"] in SECRET_SETTINGS:
                    assert "value" not in e, f"{kind}: {e['name']} has a literal value"
                    ref = e["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == "codexec-secrets"
            for source in c.get("envFrom", []):
                assert "secretRef" not in source or source["secretRef"]["name"] == (
                    "codexec-secrets"
                )
    env = {e["name"]: e for e in server_container(docs)["env"]}
    for required in ("CODEXEC_ADMIN_KEY", "CODEXEC_REDIS_URL", "CODEXEC_RECEIPT_SIGNING_KEY"):
        assert env[required]["valueFrom"]["secretKeyRef"].get("optional") is not True, required


def test_no_secret_material_in_deploy_files() -> None:
    token = re.compile(r"cx_[A-Za-z0-9_-]{20,}|redis://:[^$@\s]+@|-----BEGIN")
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            found = token.findall(path.read_text(errors="replace"))
            assert not found, f"{path.relative_to(ROOT)} holds what looks like a secret: {found}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_sets_environment_namespace_ingress_and_valid_settings(overlay: str) -> None:
    docs = build(overlay)
    namespace = f"codexec-{overlay}"
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == namespace, f"{d['kind']} not namespaced"
    config = config_data(docs)
    assert config["CODEXEC_ENVIRONMENT"] == overlay
    ingress = one(docs, "Ingress")
    hosts = [r["host"] for r in ingress["spec"]["rules"]]
    assert hosts
    assert all(h in t["hosts"] for t in ingress["spec"]["tls"] for h in hosts)
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == one(docs, "Service")["metadata"]["name"]
    # the rendered settings start the service (production refuses unsafe ones)
    values: dict[str, Any] = {k.removeprefix("CODEXEC_").lower(): v for k, v in config.items()}
    Settings(**values, admin_key="a" * 32, redis_url="redis://redis:6379/0")


def test_overlays_differ_in_scale() -> None:
    def scale(overlay: str) -> tuple[int, int, str]:
        docs = build(overlay)
        deployment = one(docs, "Deployment")["spec"]
        limits = deployment["template"]["spec"]["containers"][0]["resources"]["limits"]
        return (
            deployment["replicas"],
            one(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"],
            limits["memory"],
        )

    staging, production = scale("staging"), scale("production")
    assert production[0] > staging[0]
    assert production[1] > staging[1]
    assert production[2] != staging[2]
    assert build("staging") != build("production")


# ---------------------------------------------------------------- Dockerfile and compose


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint")
    done = run(
        hadolint,
        "--no-color",
        "--config",
        str(ROOT / ".hadolint.yaml"),
        "--failure-threshold",
        "warning",
        str(DEPLOY / "Dockerfile"),
    )
    assert done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}"


def test_hadolint_ignores_have_reasons() -> None:
    text = (ROOT / ".hadolint.yaml").read_text()
    config = yaml.safe_load(text)
    for rule in config.get("ignored") or []:
        lines = [line for line in text.splitlines() if re.search(rf"-\s*{rule}\b", line)]
        assert lines, rule
        assert all("#" in line and line.split("#", 1)[1].strip() for line in lines), (
            f"ignored rule {rule} needs a reason in a comment on its line"
        )


def test_dockerfile_follows_the_image_contract() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    body = re.sub(r"\\\n", " ", text)
    instructions = [line.strip() for line in body.splitlines() if line.strip()]
    instructions = [line for line in instructions if not line.startswith("#")]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage build"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", body, re.M)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "pip install" in body
    assert "-c constraints.txt" in body
    assert "codexec compile-cache" in body
    # compile-cache only warns when the TypeScript stripper cannot be downloaded: the build
    # must fail instead of shipping an image without it
    assert "python -m sandbox.typescript fetch" in body
    env = " ".join(line for line in instructions if line.startswith("ENV "))
    assert "CODEXEC_HOST=0.0.0.0" in env
    assert f"CODEXEC_VAR_DIR={VAR_DIR}" in env
    cache = re.search(r"CODEXEC_MODULE_CACHE_DIR=(\S+)", env)
    assert cache
    assert not cache.group(1).startswith(VAR_DIR)
    health = next(line for line in instructions if line.startswith("HEALTHCHECK "))
    assert "/healthz" in health
    assert "python" in health
    assert "curl" not in health
    assert 'ENTRYPOINT ["codexec"]' in instructions
    assert 'CMD ["serve"]' in instructions
    assert "`codexec serve`" in (ROOT / "README.md").read_text()  # the documented command
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} does not exist"
    # the cache dir the image builds is the one the Kubernetes ConfigMap points at
    assert config_value_in_base("CODEXEC_MODULE_CACHE_DIR") == cache.group(1)


def config_value_in_base(name: str) -> str:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    for generator in kustomization["configMapGenerator"]:
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            if key == name:
                return str(value)
    raise AssertionError(f"{name} not in the base ConfigMap")


def test_compose_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {"codexec", "redis"}
    assert str(services["redis"]["image"]).startswith("redis:7")
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    app = services["codexec"]
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert app["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / app["build"]["context"] / app["build"]["dockerfile"]).is_file()
    assert app["read_only"] is True
    assert app["cap_drop"] == ["ALL"]
    assert any(str(v).endswith(":" + VAR_DIR) for v in app["volumes"])
    env = app["environment"]
    assert set(env) <= setting_names(), f"not settings: {set(env) - setting_names()}"
    required = re.compile(r"\$\{[A-Z_]+:\?[^}]+\}")
    for name in ("CODEXEC_ADMIN_KEY", "CODEXEC_REDIS_URL", "CODEXEC_RECEIPT_SIGNING_KEY"):
        assert required.search(str(env[name])), f"{name} must be required with ${{VAR:?message}}"
    # every secret the file mentions is required, never defaulted
    for var in ("CODEXEC_ADMIN_KEY", "REDIS_PASSWORD", "CODEXEC_RECEIPT_SIGNING_KEY"):
        uses = re.findall(rf"\$\{{{var}(:?[?-]?)", text)
        assert uses, var
        assert set(uses) == {":?"}, f"${{{var}}} must always be ${{{var}:?message}}"


# ---------------------------------------------------------------- Prometheus and Grafana

PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (functions, labels and keywords removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end() :].lstrip().startswith("(") or m.group() in PROMQL_WORDS:
            continue
        names.add(m.group())
    return names


def exported_metric_names() -> set[str]:
    """What a scrape of the service can contain, by family type."""
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    board = json.loads((PROM / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and query:
            exprs.append(re.sub(r"^label_values\(([^,)]+).*", r"\1", query))
    return exprs


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(codexec_x_bucket{route=~"/e|/"}'
        "[5m]))) > 2.5 and on (job) absent(codexec_y_total offset 5m) / scalar(up)"
    )
    assert metric_names(expr) == {"codexec_x_bucket", "codexec_y_total", "up"}
    assert "codexec_http_request_seconds_bucket" in exported_metric_names()
    assert "codexec_executions_total" in exported_metric_names()
    assert "codexec_sandbox_in_use" in exported_metric_names()


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    for rule in rules():
        used = metric_names(rule["expr"])
        assert used, f"{rule['alert']} reads no metric"
        assert used <= exported, f"{rule['alert']} uses unknown metrics: {used - exported}"
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    used = set().union(*(metric_names(e) for e in exprs))
    assert used <= exported, f"the dashboard uses unknown metrics: {used - exported}"
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in exported}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    assert families <= shown, f"metrics missing from the dashboard: {families - shown}"


def test_dashboard_layout() -> None:
    """Panel IDs are unique and no two panels share a grid cell (Grafana would move them)."""
    panels = json.loads((PROM / "grafana-dashboard.json").read_text())["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel id"
    taken: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for cell in (
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        ):
            assert cell not in taken, f"{p['title']!r} overlaps {taken[cell]!r}"
            taken[cell] = p["title"]


def test_alerts_cover_the_issue_and_are_tested_and_documented() -> None:
    alerts = {r["alert"]: r["expr"] for r in rules()}
    needed = {
        "codexec_http_requests_total",
        "codexec_admission_rejections_total",
        "codexec_http_request_seconds_bucket",
        "codexec_billing_spool_depth",
        "codexec_redis_errors_total",
        "codexec_reconcile_mismatches",
        "codexec_job_queue_depth",
        "codexec_job_age_seconds_bucket",
        "codexec_webhook_deliveries_total",
    }
    assert needed <= set().union(*(metric_names(e) for e in alerts.values()))
    spool = next(r for r in rules() if "codexec_billing_spool_depth" in r["expr"])
    assert spool["for"] == "10m"
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())["tests"]
    tested: dict[str, set[bool]] = {}
    for case in tests:
        for check in case.get("alert_rule_test", []):
            tested.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    for alert in alerts:
        assert tested.get(alert) == {True, False}, f"{alert}: needs a firing and a silent case"
    docs = (ROOT / "docs" / "operations.md").read_text()
    for alert in alerts:
        assert re.search(rf"^#+ .*\b{alert}\b", docs, re.M), f"{alert} not in operations.md"


def _promtool() -> str:
    return tool("promtool", "PROMTOOL")


def test_promtool_check_rules() -> None:
    done = run(_promtool(), "check", "rules", str(PROM / "rules.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_for_rules() -> None:
    done = run(_promtool(), "test", "rules", "rules_test.yml", cwd=PROM)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_config(tmp_path: Path) -> None:
    promtool = _promtool()
    done = run(promtool, "check", "config", str(PROM / "prometheus.yml"))
    if done.returncode != 0 and "kubernetes_sd_configs not found" in done.stdout + done.stderr:
        # Debian's promtool is built without Kubernetes discovery: check the rest of the
        # file (relabelling, static job, rule files) with a file-based discovery instead.
        config = yaml.safe_load((PROM / "prometheus.yml").read_text())
        for job in config["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None) is not None:
                job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(PROM / "rules.yml", tmp_path / "rules.yml")
        done = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert any("kubernetes_sd_configs" in j for j in jobs.values())
    assert any("static_configs" in j for j in jobs.values())
    relabel = next(j for j in jobs.values() if "kubernetes_sd_configs" in j)["relabel_configs"]
    keep = {tuple(r["source_labels"]) for r in relabel if r.get("action") == "keep"}
    assert ("__meta_kubernetes_pod_annotation_prometheus_io_scrape",) in keep
