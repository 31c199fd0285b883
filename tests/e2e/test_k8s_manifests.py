# Kubernetes manifests: every Kustomize overlay renders, validates against the Kubernetes API
# schemas offline (kubernetes-validate), and holds what a reviewer checks before applying it.
import base64
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from e2e_support import ROOT

K8S = ROOT / "deploy" / "k8s"
# The API version the manifests are validated against (K3S and managed clusters ship it).
KUBERNETES_VERSION = "1.32.0"
TARGETS = {"base": K8S / "base", "cpu": K8S / "overlays" / "cpu",
           "k3s-gpu": K8S / "overlays" / "k3s-gpu"}
SECRET_PLACEHOLDER = "REPLACE-ME"
GPU = "nvidia.com/gpu"


def kustomize_command():
    built = ROOT / ".tools" / "bin" / "kustomize"
    if built.exists():
        return [str(built), "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail("no kustomize: scripts/install_kustomize builds one into .tools/bin")


def render(target):
    result = subprocess.run(kustomize_command() + [str(TARGETS[target])], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"kustomize build {target}: {result.stderr}"
    return [o for o in yaml.safe_load_all(result.stdout) if o]


@pytest.fixture(scope="module", params=sorted(TARGETS))
def rendered(request):
    return request.param, render(request.param)


def one(objects, kind, name):
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(objects):
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]


def containers(objects):
    for name, spec in pod_specs(objects):
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield name, spec, c


def worker_resources(objects):
    return one(objects, "Deployment", "dreamforge-worker")["spec"]["template"]["spec"][
        "containers"][0]["resources"]


def test_every_object_validates_against_the_kubernetes_schemas(rendered):
    target, objects = rendered
    assert objects, f"{target} rendered nothing"
    for o in objects:
        try:
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{target}: {o['kind']} {o['metadata']['name']}: {error.message} "
                        f"at {'.'.join(map(str, error.path))}")


def test_api_probes_point_at_the_health_endpoints(rendered):
    _, objects = rendered
    api = one(objects, "Deployment", "dreamforge-api")
    assert api["spec"]["replicas"] == 2
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["api"]
    port_names = {p["name"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    service = one(objects, "Service", "dreamforge-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in port_names


def test_every_container_runs_non_root_on_a_read_only_root(rendered):
    target, objects = rendered
    checked = 0
    for name, spec, c in containers(objects):
        pod_security = spec.get("securityContext", {})
        security = c.get("securityContext", {})
        non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        assert non_root is True and user != 0, f"{target} {name}/{c['name']} may run as root"
        assert security.get("readOnlyRootFilesystem") is True, f"{target} {name}/{c['name']}"
        assert security.get("allowPrivilegeEscalation") is False, f"{target} {name}/{c['name']}"
        assert "requests" in c.get("resources", {}), f"{target} {name}/{c['name']} asks nothing"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{target} {name}: no /tmp emptyDir"
        checked += 1
    assert checked >= 3


def test_references_name_objects_that_are_rendered(rendered):
    target, objects = rendered
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for name, spec, c in containers(objects):
        for source in c.get("envFrom", []):
            if "configMapRef" in source:
                assert ("ConfigMap", source["configMapRef"]["name"]) in names, f"{target} {name}"
            if "secretRef" in source:
                assert ("Secret", source["secretRef"]["name"]) in names, f"{target} {name}"
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names, f"{target} {name}"
        if "runtimeClassName" in spec:
            assert ("RuntimeClass", spec["runtimeClassName"]) in names, f"{target} {name}"
    pods = {o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
            for o in objects if o["kind"] == "Deployment"}
    for budget in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"].items()
        assert any(selector <= labels.items() for labels in pods.values()), f"{target} PDB"
    for scaler in (o for o in objects if o["kind"] == "HorizontalPodAutoscaler"):
        assert scaler["spec"]["scaleTargetRef"]["name"] in pods, f"{target} HPA"


def test_gpu_overlays_request_a_gpu_and_the_cpu_overlay_none():
    for target in ("base", "k3s-gpu"):
        resources = worker_resources(render(target))
        assert str(resources["limits"][GPU]) == "1", target
    k3s = render("k3s-gpu")
    worker = one(k3s, "Deployment", "dreamforge-worker")["spec"]["template"]["spec"]
    assert worker["runtimeClassName"] == "nvidia"
    assert one(k3s, "RuntimeClass", "nvidia")["handler"] == "nvidia"
    cpu = render("cpu")
    for name, _, c in containers(cpu):
        for bound in c.get("resources", {}).values():
            assert GPU not in bound, f"cpu overlay: {name}/{c['name']} asks for a GPU"
    env = {e["name"]: e["value"] for e in one(cpu, "Deployment", "dreamforge-worker")[
        "spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DREAMFORGE_DEVICES"] == "cpu"


def test_the_migration_job_runs_dreamforge_migrate(rendered):
    _, objects = rendered
    job = one(objects, "Job", "dreamforge-migrate")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] + container["args"] == ["dreamforge", "migrate"]
    assert container["image"].startswith("dreamforge:")


def test_secrets_carry_only_placeholders(rendered):
    target, objects = rendered
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        values = dict(secret.get("stringData", {}))
        values.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
        credentials = {"DREAMFORGE_DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "DREAMFORGE_SECRET"}
        assert credentials <= values.keys()
        for key, value in values.items():
            assert value == SECRET_PLACEHOLDER, f"{target}: Secret key {key} holds a value"


def test_images_share_one_pinned_release_tag(rendered):
    target, objects = rendered
    images = {c["image"] for _, _, c in containers(objects)}
    names = {image.split(":")[0] for image in images}
    tags = {image.partition(":")[2] for image in images}
    assert len(tags) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", tags.pop()), f"{target}: {images}"
    worker = "dreamforge-worker" if target == "cpu" else "dreamforge-worker-cuda"
    assert names == {"dreamforge", worker}, f"{target}: {images}"


def test_worker_autoscaling_reads_a_metric_the_service_exports(rendered):
    target, objects = rendered
    exported = (ROOT / "src" / "telemetry" / "service_metrics.h").read_text()
    api = one(objects, "HorizontalPodAutoscaler", "dreamforge-api")
    assert api["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    workers = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"
               and o["metadata"]["name"] == "dreamforge-worker"]
    if target == "k3s-gpu":
        assert not workers, "a single GPU node has no worker to add"
        return
    metric = workers[0]["spec"]["metrics"][0]["external"]["metric"]["name"]
    assert f'"{metric}"' in exported, f"{metric} is not a metric /metrics exports"
