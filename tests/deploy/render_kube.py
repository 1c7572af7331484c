#!/usr/bin/env python3
"""A copy of docker/k8s's ConfigMap and Deployment that `podman kube play` can run on this
machine: one replica, the host's network (so only loopback is used: CONVD_HOST 127.0.0.1 and a
free port; podman takes no port mappings there, and probes name the port by number), and the
image built here. Everything else (security context, resources, probes' paths, environment)
is the manifests' own.

usage: render_kube.py PORT IMAGE OUT.yaml
"""
import sys

import yaml

port, image, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
configmap = yaml.safe_load(open("docker/k8s/configmap.yaml"))
deployment = yaml.safe_load(open("docker/k8s/deployment.yaml"))
configmap["data"].update(CONVD_HOST="127.0.0.1", CONVD_PORT=str(port))
deployment["spec"]["replicas"] = 1
pod = deployment["spec"]["template"]["spec"]
pod["hostNetwork"] = True
container = pod["containers"][0]
container["image"] = image
named = {p["name"]: p["containerPort"] for p in container.pop("ports")}
for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
    get = container[probe]["httpGet"]
    assert named.get(get["port"]) == 8080, f"{probe} names port {get['port']}"
    get["port"] = port
yaml.safe_dump_all([configmap, deployment], open(out, "w"))
