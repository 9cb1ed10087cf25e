"""Static validation of deploy/k8s: the manifests' structure, settings names, the api and worker Deployments, and the
Kubernetes JSON schemas (kubernetes-validate). Shared helpers: tests/fixtures/deploy.py.
"""

from typing import Any

from pingan.streams import topics
from tests.fixtures.deploy import K8S, k8s_docs, k8s_find, required_tool, run, settings_env_names

# ---- Kubernetes ---------------------------------------------------------------------------------------------------

REQUIRED_SPEC = {
    "Deployment": ("spec.selector.matchLabels", "spec.template.metadata.labels", "spec.template.spec.containers"),
    "Service": ("spec.selector", "spec.ports"),
    "ConfigMap": ("data",),
    "Secret": ("stringData",),
    "Job": ("spec.template.spec.containers", "spec.template.spec.restartPolicy"),
    "PodDisruptionBudget": ("spec.selector.matchLabels",),
    "Namespace": (),
    "Kafka": ("spec.kafka.listeners",),
    "KafkaNodePool": ("spec.replicas", "spec.roles", "spec.storage"),
    "KafkaTopic": ("spec.partitions", "spec.replicas"),
}


def dig(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{doc['kind']}/{doc['metadata']['name']}: no {dotted}"
        node = node[part]
    return node


def test_k8s_manifests_structure() -> None:
    docs = k8s_docs()
    assert docs
    for path, doc in docs:
        if doc.get("kind") == "Kustomization":
            listed = set(doc["resources"])
            assert all((K8S / r).is_file() for r in listed), path
            # everything but the Strimzi resources (they need the operator) is applied by `kubectl apply -k`
            assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "kafka-strimzi.yaml"}
            continue
        assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: apiVersion and kind are required"
        assert doc.get("metadata", {}).get("name"), f"{path.name}: {doc['kind']} without metadata.name"
        assert doc["kind"] in REQUIRED_SPEC, f"{path.name}: unexpected kind {doc['kind']}"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "pingan", f"{path.name}: {doc['metadata']['name']}"
        for field in REQUIRED_SPEC[doc["kind"]]:
            dig(doc, field)
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]
            if doc["kind"] == "Deployment":
                sel = doc["spec"]["selector"]["matchLabels"]
                assert sel.items() <= pod["metadata"]["labels"].items(), f"{path.name}: selector matches no pod"
            for c in pod["spec"]["containers"]:
                assert c.get("name") and c.get("image"), path.name
        if doc["kind"] in ("ConfigMap", "Secret"):
            values = doc.get("data") or doc.get("stringData")
            assert all(isinstance(v, str) for v in values.values()), f"{path.name}: values must be strings"


def test_k8s_settings_names_are_pingan_settings() -> None:
    known = settings_env_names()
    for kind, name in (("ConfigMap", "pingan-config"), ("Secret", "pingan-secrets")):
        doc = k8s_find(kind, name)
        keys = set(doc.get("data") or doc.get("stringData"))
        assert keys - known == set(), f"{kind}/{name}: not Pingan settings (typo?): {sorted(keys - known)}"
    config = k8s_find("ConfigMap", "pingan-config")["data"]
    secret = k8s_find("Secret", "pingan-secrets")["stringData"]
    assert "KAFKA_BOOTSTRAP_SERVERS" in config and "PINGAN_DATABASE_URL" in secret
    assert secret["PINGAN_DATABASE_URL"].startswith("postgresql://")
    assert config["PINGAN_HTTP_HOST"] == "0.0.0.0"


def pod_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_k8s_api_deployment_and_service() -> None:
    api = k8s_find("Deployment", "pingan-api")
    c = pod_container(api)
    assert c["args"] == ["api"]
    refs = {(r.get("configMapRef") or r.get("secretRef"))["name"] for r in c["envFrom"]}
    assert refs == {"pingan-config", "pingan-secrets"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    http_port = int(k8s_find("ConfigMap", "pingan-config")["data"]["PINGAN_HTTP_PORT"])
    assert ports["http"] == http_port
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in (http_port, "http"), probe
    ann = api["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == http_port
    assert ann["prometheus.io/path"] == "/metrics"
    svc = k8s_find("Service", "pingan-api")
    assert svc["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= set(ports) | set(ports.values())


def test_k8s_workers_are_bounded_by_partitions() -> None:
    worker = k8s_find("Deployment", "pingan-worker")
    c = pod_container(worker)
    assert c["args"] == ["worker"]
    assert 1 <= worker["spec"]["replicas"] <= topics.DEFAULT_PARTITIONS
    text = (K8S / "worker.yaml").read_text(encoding="utf-8")
    assert f"partition count ({topics.DEFAULT_PARTITIONS})" in text and "idle" in text
    metrics_port = int(k8s_find("ConfigMap", "pingan-config")["data"]["PINGAN_METRICS_PORT"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == metrics_port
    ann = worker["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == metrics_port
    assert c["livenessProbe"]["httpGet"]["port"] in ("metrics", metrics_port)
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def test_k8s_manifests_against_the_kubernetes_schemas() -> None:
    validator = required_tool(
        "kubernetes-validate", "pip install kubernetes-validate, in the test extras: it bundles the Kubernetes "
        "JSON schemas and works offline")
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name not in ("kustomization.yaml", "kafka-strimzi.yaml")]
    out = run([validator, "--strict", "-k", "1.30.0", *files], cwd=K8S)
    assert "did not validate" not in out.stdout + out.stderr
