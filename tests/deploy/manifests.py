#!/usr/bin/env python3
"""The deployment files checked against each other, the Dockerfile and the server itself:
every CONVD_* variable they set is one `convd serve --help` lists; the Deployment's probes,
security context, resources and ConfigMap; the Service, HPA and PDB aimed at the Deployment's
pods; kustomization and the API-keys patch; compose's services, nginx.conf's upstream and
retry policy. What Kubernetes and compose would only say at deploy time is said here.

usage: manifests.py CONVD_BINARY
Closes with "manifests: N passed, N failed".
"""
import glob
import os
import re
import subprocess
import sys

import yaml

passed = failed = 0


def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    passed, failed = passed + bool(ok), failed + (not ok)


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def main():
    convd = sys.argv[1]
    help_text = subprocess.run([convd, "serve", "--help"], capture_output=True, text=True).stdout
    known = set(re.findall(r"\[(CONVD_[A-Z_]+);", help_text))
    check(len(known) > 10, f"convd serve --help lists its variables ({len(known)})")

    k8s = {os.path.basename(p): load(p) for p in glob.glob("docker/k8s/*.yaml")}
    patch = load("docker/k8s/patches/api-keys.yaml")
    compose = load("docker/compose.yaml")
    dockerfile = open("docker/Dockerfile").read()
    nginx = open("docker/nginx.conf").read()

    # Every CONVD_* variable anywhere in the deployment files is a real setting.
    texts = {p: open(p).read() for p in glob.glob("docker/**/*", recursive=True)
             if os.path.isfile(p)}
    named = {p: set(re.findall(r"\bCONVD_[A-Z_]+\b", t)) for p, t in sorted(texts.items())}
    for path in ("docker/Dockerfile", "docker/compose.yaml", "docker/k8s/configmap.yaml"):
        check(named.get(path), f"{path} configures convd by CONVD_* variables")
    for path, names in named.items():
        if names:
            unknown = names - known
            check(not unknown, f"{path}: {len(names)} CONVD_ variables, all convd settings"
                  + (f" (unknown: {sorted(unknown)})" if unknown else ""))

    image_uid = re.search(r"^USER (\d+):(\d+)", dockerfile, re.M)
    check(image_uid, "Dockerfile has a numeric USER uid:gid")
    uid = int(image_uid[1]) if image_uid else -1
    check(re.search(r"^EXPOSE 8080$", dockerfile, re.M), "Dockerfile EXPOSE 8080")

    config = k8s["configmap.yaml"]
    dep = k8s["deployment.yaml"]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(),
          "Deployment selector matches its pod labels")
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(ports.get("http") == int(config["data"]["CONVD_PORT"]),
          "container port 'http' is the ConfigMap's CONVD_PORT")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") in ports,
              f"{probe}: GET {path} on a named container port")
    refs = [e["configMapRef"]["name"] for e in container.get("envFrom", [])]
    check(config["metadata"]["name"] in refs, "Deployment takes its environment from the ConfigMap")
    check(config["data"].get("CONVD_HOST") == "0.0.0.0", "ConfigMap listens on all interfaces")
    res = container.get("resources", {})
    check(all(k in res.get(kind, {}) for kind in ("requests", "limits") for k in ("cpu", "memory")),
          "cpu and memory requests and limits")
    sec, pod_sec = container.get("securityContext", {}), pod.get("securityContext", {})
    check(pod_sec.get("runAsNonRoot") is True and pod_sec.get("runAsUser") == uid,
          f"runAsNonRoot, runAsUser = the image's uid {uid}")
    check(sec.get("readOnlyRootFilesystem") is True, "read-only root filesystem")
    check(sec.get("allowPrivilegeEscalation") is False and
          sec.get("capabilities", {}).get("drop") == ["ALL"],
          "no privilege escalation, every capability dropped")
    pause = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause_s = int(pause[1]) if pause[:1] == ["sleep"] else 0
    drain_s = float(config["data"].get("CONVD_DRAIN_TIMEOUT", 30))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > pause_s + drain_s,
          f"grace period {grace} s > preStop {pause_s} s + drain {drain_s:g} s")

    svc = k8s["service.yaml"]
    check(svc["spec"]["selector"].items() <= labels.items(), "Service selects the pods")
    check(all(p["targetPort"] in ports for p in svc["spec"]["ports"]),
          "Service targets the named container port")
    hpa = k8s["hpa.yaml"]
    target = hpa["spec"]["scaleTargetRef"]
    check(target["kind"] == "Deployment" and target["name"] == dep["metadata"]["name"],
          "HPA scales the Deployment")
    check(1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], "HPA min <= max")
    check(any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"]["metrics"]) and
          "cpu" in res.get("requests", {}), "HPA on CPU, which the pods request")
    pdb = k8s["pdb.yaml"]
    check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(),
          "PodDisruptionBudget selects the pods")
    check(pdb["spec"].get("maxUnavailable", 0) < min(dep["spec"]["replicas"],
                                                     hpa["spec"]["minReplicas"]),
          "PodDisruptionBudget leaves pods serving")

    kustom = k8s.pop("kustomization.yaml")
    check(sorted(kustom["resources"]) == sorted(k8s),
          "kustomization lists every manifest of docker/k8s")
    pcont = patch["spec"]["template"]["spec"]["containers"][0]
    keys_env = {e["name"]: e["value"] for e in pcont["env"]}.get("CONVD_API_KEYS", "")
    mounts = {m["name"]: m["mountPath"] for m in pcont["volumeMounts"]}
    volumes = {v["name"]: v for v in patch["spec"]["template"]["spec"]["volumes"]}
    check(pcont["name"] == container["name"], "API-keys patch names the container")
    check(any(keys_env.startswith(path + "/") and "secret" in volumes.get(name, {})
              for name, path in mounts.items()),
          "API-keys patch: CONVD_API_KEYS is a file of the mounted Secret")
    check(pod_sec.get("fsGroup") == int(image_uid[2]) if image_uid else False,
          "fsGroup lets the image's group read mounted Secrets")

    services = compose["services"]
    check(services["convd"]["build"]["dockerfile"] == "docker/Dockerfile" and
          os.path.exists(os.path.join("docker", services["convd"]["build"]["context"],
                                      "docker/Dockerfile")),
          "compose builds docker/Dockerfile from the repository root")
    check(services["convd"].get("deploy", {}).get("replicas", 1) >= 2,
          "compose runs several convd replicas")
    check(services["convd"].get("read_only") is True, "compose: read-only root filesystem")
    check(services["nginx"]["depends_on"]["convd"]["condition"] == "service_healthy" and
          "HEALTHCHECK" in dockerfile, "nginx waits for healthy replicas (the image's HEALTHCHECK)")
    check(any(v.startswith("./nginx.conf:") for v in services["nginx"]["volumes"]),
          "compose mounts docker/nginx.conf")
    check(re.search(r"^\s*server convd:8080\b", nginx, re.M),
          "nginx upstream is the compose service on convd's port")
    retry = re.search(r"proxy_next_upstream ([^;]*);", nginx)
    check(retry and {"error", "timeout", "http_503", "non_idempotent"} <= set(retry[1].split()),
          "nginx retries errors, timeouts and 503 on another replica, POST included")
    body = re.search(r"client_max_body_size (\d+)m;", nginx)
    check(body and int(body[1]) >= 64, "nginx takes bodies up to convd's default 64 MiB")

    print(f"manifests: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
