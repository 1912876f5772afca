"""deploy/k8s/ checked offline: every document against the Kubernetes JSON schemas (strict: an
unknown or misspelt field fails), for the oldest and newest versions we claim, and against rankd
itself: every flag the manifests pass exists in `rankd --help` / `rankctl publish --help`, the
probes ask grpc.health.v1 what rankd reports, and the termination grace period covers the preStop
pause plus rankd's drain timeout."""

import os
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# Native gRPC probes are GA since 1.27; 1.29 is the oldest we claim, the newest is what the
# package bundles.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def documents():
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def find(kind, name):
    return next(doc for _, doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def binary(name):
    base = os.environ.get("RANKD_BIN")
    if base:
        return os.path.join(os.path.dirname(base), name)
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), name)


def help_flags(*command):
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return set(re.findall(r"--[a-z][a-z0-9-]*", out.stdout + out.stderr))


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_passes_the_strict_schema(version):
    checked = []
    for name, doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)
        checked.append(f"{name}:{doc['kind']}")
    assert {"Deployment", "Service", "PodDisruptionBudget", "CronJob", "PersistentVolumeClaim"} <= \
        {c.split(":")[1] for c in checked}


def test_the_schema_check_rejects_a_misspelt_field():
    doc = find("Deployment", "rankd")
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)


def container(doc):
    spec = doc["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def test_rankd_flags_exist_and_probes_and_grace_period_fit_rankd():
    spec, rankd = container(find("Deployment", "rankd"))
    known = help_flags(binary("rankd"), "--help")
    passed = {arg.split("=", 1)[0] for arg in rankd["args"] if arg.startswith("--")}
    assert passed and passed <= known, passed - known
    args = dict(arg.split("=", 1) for arg in rankd["args"])
    port = int(args["--listen"].rsplit(":", 1)[1])
    assert rankd["ports"][0]["containerPort"] == port
    assert rankd["readinessProbe"]["grpc"] == {"port": port, "service": "ranking.v1.Ranker"}
    assert rankd["livenessProbe"]["grpc"] == {"port": port}  # "" = the server, up without a snapshot
    pause = int(rankd["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] >= pause + int(args["--drain-timeout"]) + 5
    # --threads matches the CPU request (one event loop per core).
    assert args["--threads"] == rankd["resources"]["requests"]["cpu"]
    mounts = {m["mountPath"] for m in rankd["volumeMounts"]}
    assert args["--snapshot-root"] in mounts
    assert os.path.dirname(args["--admin-token-file"]) in mounts


def test_publisher_flags_exist_and_its_script_parses():
    job = find("CronJob", "rankd-publish")["spec"]["jobTemplate"]
    spec, publish = container(job)
    script = publish["args"][0]
    known = help_flags(binary("rankctl"), "publish", "--help")
    used = set(re.findall(r"(--[a-z][a-z0-9-]*)", script.split("rankctl publish", 1)[1]))
    assert used and used <= known, used - known
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
    # It reaches not-ready pods too: they are the ones waiting for a snapshot.
    assert "rankd-replicas" in script
    assert find("Service", "rankd-replicas")["spec"]["publishNotReadyAddresses"] is True
    assert find("Service", "rankd")["spec"].get("publishNotReadyAddresses", False) is False
    deployment = find("Deployment", "rankd")
    for service in (find("Service", "rankd"), find("Service", "rankd-replicas")):
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_publisher_script_fills_and_reconciles_real_replicas(tmp_path):
    """The CronJob's script itself, run by sh against three rankd on 127.0.0.1-3 (one port, as pods
    share one): only the cluster paths are replaced, and `getent` is a stand-in printing what
    `getent ahostsv4 rankd-replicas` prints for a headless Service."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("interop_support", ROOT / "Tests" / "Interop" / "conftest.py")
    interop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(interop)

    script = container(find("CronJob", "rankd-publish")["spec"]["jobTemplate"])[1]["args"][0]
    releases, token = tmp_path / "releases", tmp_path / "token"
    releases.mkdir()
    token.write_text("deploy-test-token\n")
    interop.synth(releases, "rel-v1", seed=31, items=200, categories=3)
    (releases / "CURRENT").write_text("rel-v1\n")
    port = interop.free_port()
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "getent").write_text("#!/bin/sh\n[ \"$1 $2\" = 'ahostsv4 rankd-replicas' ] || exit 2\n" + "".join(
        f"echo '{h}       {kind}{' rankd-replicas' if kind == 'STREAM' else ''}'\n"
        for h in hosts for kind in ("STREAM", "DGRAM", "RAW")))
    (fake / "getent").chmod(0o755)
    for old, new in [("/releases", str(releases)), ("/usr/local/bin/rankctl", binary("rankctl")),
                     ("/etc/rankd/admin-token/token", str(token)), (":50051", f":{port}")]:
        assert old in script, old
        script = script.replace(old, new)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    servers = []
    try:
        for index, host in enumerate(hosts):
            servers.append(interop.RankdProcess("--snapshot-root", str(tmp_path / f"root-{index}"),
                                                "--admin-token-file", str(token), port=port, host=host).start())
        first = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "active on all 3 replicas: rel-v1" in first.stdout
        again = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and again.stdout.count("already active: rel-v1") == 3, again.stdout
    finally:
        for server in servers:
            server.stop()
