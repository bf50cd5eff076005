"""Reads synthesized Kubernetes manifests and turns pod templates into process specs.

The rules are the kubelet's, written down here from its documented behaviour:

* environment: service-link variables first (unless ``enableServiceLinks: false``), then
  ``envFrom`` sources, then ``env`` in order; ``value`` strings are expanded with ``$(VAR)``
  against what is defined so far; ``valueFrom`` values are taken as they are;
* ``command``/``args`` are expanded against the container's final environment;
* ``$$`` is an escaped ``$``; an unresolved ``$(VAR)`` and an unterminated ``$(`` stay literal;
* a container with no ``command`` runs the image's entrypoint, with ``args`` (or the image's cmd).
"""
from __future__ import annotations

import base64
import copy
import dataclasses
import glob
import os
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import yaml

WORKLOAD_KINDS = ("StatefulSet", "Deployment", "Job", "DaemonSet", "CronJob", "Pod")


class ManifestError(Exception):
    """A manifest cannot be turned into a running container (the kubelet would refuse it too)."""


# --- loading ---------------------------------------------------------------------------------------

def load_objects(path: str) -> List[Dict[str, Any]]:
    """Every object in a directory of YAML files (or one file), in file order."""
    files = sorted(glob.glob(os.path.join(path, "*.yaml")) + glob.glob(os.path.join(path, "*.yml"))) if os.path.isdir(path) else [path]
    if not files:
        raise ManifestError(f"no YAML files in {path}")
    objects: List[Dict[str, Any]] = []
    for file in files:
        with open(file, encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                if not doc:
                    continue
                if doc.get("kind") == "List":
                    objects.extend(doc.get("items") or [])
                else:
                    objects.append(doc)
    return objects


class Manifests:
    """An index of objects by kind, namespace and name."""

    def __init__(self, objects: Iterable[Dict[str, Any]], default_namespace: str = "default"):
        self.objects = list(objects)
        self.default_namespace = default_namespace

    @classmethod
    def from_path(cls, path: str) -> "Manifests":
        return cls(load_objects(path))

    def ns(self, obj: Mapping[str, Any]) -> str:
        return (obj.get("metadata") or {}).get("namespace") or self.default_namespace

    def of_kind(self, kind: str, namespace: Optional[str] = None) -> List[Dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind and (namespace is None or self.ns(o) == namespace)]

    def get(self, kind: str, name: str, namespace: Optional[str] = None) -> Optional[Dict[str, Any]]:
        for obj in self.of_kind(kind, namespace):
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def one(self, kind: str, name_prefix: str = "", namespace: Optional[str] = None) -> Dict[str, Any]:
        found = [o for o in self.of_kind(kind, namespace) if o["metadata"]["name"].startswith(name_prefix)]
        if len(found) != 1:
            raise ManifestError(f"expected one {kind} named {name_prefix}*, found {[o['metadata']['name'] for o in found]}")
        return found[0]

    def workloads(self) -> List[Dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") in WORKLOAD_KINDS]

    # Secrets and ConfigMaps: the kubelet reads them from the API server; here from the manifests
    # (plus any the test adds, for Secrets that the stack expects to exist already).
    def secret_data(self, name: str, namespace: str) -> Dict[str, bytes]:
        obj = self.get("Secret", name, namespace)
        if obj is None:
            raise ManifestError(f'secret "{name}" not found in namespace {namespace}')
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        # stringData is merged into data by the API server, and wins.
        data.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
        return data

    def configmap_data(self, name: str, namespace: str) -> Dict[str, bytes]:
        obj = self.get("ConfigMap", name, namespace)
        if obj is None:
            raise ManifestError(f'configmap "{name}" not found in namespace {namespace}')
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data


def pod_template(workload: Mapping[str, Any]) -> Dict[str, Any]:
    kind = workload["kind"]
    if kind == "Pod":
        return {"metadata": workload.get("metadata") or {}, "spec": workload["spec"]}
    if kind == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]
    return workload["spec"]["template"]


# --- $(VAR) expansion ------------------------------------------------------------------------------

def expand(text: str, *contexts: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion: first context that has the name wins; unknown names stay."""
    def mapping(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"$({name})"

    out: List[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            if rest[0] == "$":
                read, is_var, advance = "$", False, 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close != -1:
                    read, is_var, advance = rest[1:close], True, close + 1
                else:
                    read, is_var, advance = "$(", False, 1
            else:
                read, is_var, advance = "$" + rest[0], False, 1
            out.append(mapping(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


# --- environment -----------------------------------------------------------------------------------

@dataclasses.dataclass
class PodContext:
    """What the kubelet knows about a pod besides its spec."""
    name: str
    namespace: str
    uid: str
    pod_ip: str
    host_ip: str
    node_name: str = "e2e-node"
    labels: Dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: Dict[str, str] = dataclasses.field(default_factory=dict)
    service_account: str = "default"


SERVICE_ENV_NAME = re.compile(r"[^A-Z0-9_]")


def service_env(services: Sequence[Mapping[str, Any]], cluster_ip: Callable[[Mapping[str, Any]], Optional[str]]) -> Dict[str, str]:
    """Docker-links-style variables the kubelet injects for each Service with a cluster IP."""
    env: Dict[str, str] = {}
    for svc in services:
        ip = cluster_ip(svc)
        spec = svc.get("spec") or {}
        if not ip or spec.get("clusterIP") == "None" or spec.get("type") == "ExternalName":
            continue
        prefix = SERVICE_ENV_NAME.sub("_", svc["metadata"]["name"].upper().replace("-", "_"))
        ports = spec.get("ports") or []
        env[f"{prefix}_SERVICE_HOST"] = ip
        if ports:
            env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
        if ports:
            first = ports[0]
            env[f"{prefix}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
        for port in ports:
            proto = port.get("protocol", "TCP")
            base = f"{prefix}_PORT_{port['port']}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{ip}:{port['port']}"
            env[base + "_PROTO"] = proto.lower()
            env[base + "_PORT"] = str(port["port"])
            env[base + "_ADDR"] = ip
    return env


def _field_ref(path: str, pod: PodContext) -> str:
    simple = {
        "metadata.name": pod.name, "metadata.namespace": pod.namespace, "metadata.uid": pod.uid,
        "spec.nodeName": pod.node_name, "spec.serviceAccountName": pod.service_account,
        "status.hostIP": pod.host_ip, "status.hostIPs": pod.host_ip,
        "status.podIP": pod.pod_ip, "status.podIPs": pod.pod_ip,
    }
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (pod.labels if m.group(1) == "labels" else pod.annotations).get(m.group(2), "")
    raise ManifestError(f"unsupported fieldRef {path}")


_CPU = {"": 1.0, "m": 0.001}
_MEM = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _quantity(q: str, table: Mapping[str, float]) -> float:
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    if not m or m.group(2) not in table:
        raise ManifestError(f"cannot parse quantity {q}")
    return float(m.group(1)) * table[m.group(2)]


def _resource_ref(ref: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    import math
    kind, _, res = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(res)
    if value is None:
        return "0"  # the kubelet uses node allocatable; not modelled
    divisor = ref.get("divisor", "1")
    if res == "cpu":
        return str(math.ceil(_quantity(value, _CPU) / _quantity(divisor, _CPU)))
    return str(math.ceil(_quantity(value, _MEM) / _quantity(divisor, _MEM)))


def container_env(container: Mapping[str, Any], pod_spec: Mapping[str, Any], pod: PodContext, manifests: Manifests,
                  svc_env: Mapping[str, str]) -> Dict[str, str]:
    """The environment the kubelet gives a container (before the image's own ENV defaults)."""
    services = svc_env if pod_spec.get("enableServiceLinks", True) else {k: v for k, v in svc_env.items() if k.startswith("KUBERNETES_")}
    env: Dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            ref = source["secretRef"]
            try:
                data = manifests.secret_data(ref["name"], pod.namespace)
            except ManifestError:
                if ref.get("optional"):
                    continue
                raise
        elif "configMapRef" in source:
            ref = source["configMapRef"]
            try:
                data = manifests.configmap_data(ref["name"], pod.namespace)
            except ManifestError:
                if ref.get("optional"):
                    continue
                raise
        else:
            raise ManifestError(f"unsupported envFrom {source}")
        for key, value in data.items():
            env[prefix + key] = value.decode()
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env, services)
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source or "configMapKeyRef" in source:
            is_secret = "secretKeyRef" in source
            ref = source["secretKeyRef" if is_secret else "configMapKeyRef"]
            what = "secret" if is_secret else "configmap"
            try:
                data = manifests.secret_data(ref["name"], pod.namespace) if is_secret else manifests.configmap_data(ref["name"], pod.namespace)
            except ManifestError:
                if ref.get("optional"):
                    continue
                raise
            if ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise ManifestError(f'couldn\'t find key {ref["key"]} in {what.capitalize()} {pod.namespace}/{ref["name"]}')
            env[name] = data[ref["key"]].decode()
        elif "fieldRef" in source:
            env[name] = _field_ref(source["fieldRef"]["fieldPath"], pod)
        elif "resourceFieldRef" in source:
            env[name] = _resource_ref(source["resourceFieldRef"], container)
        else:
            raise ManifestError(f"unsupported valueFrom {source}")
    for key, value in services.items():
        env.setdefault(key, value)
    return env


# --- images ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Image:
    """What the harness knows of an image: where its programs are and what its config says."""
    entrypoint: List[str]
    cmd: List[str]
    path: List[str]                      # directories with the image's programs, searched first
    env: Dict[str, str] = dataclasses.field(default_factory=dict)
    workdir: str = "/"
    user: int = 0
    stop_signal: str = "SIGTERM"
    uid_map: Dict[int, int] = dataclasses.field(default_factory=dict)  # image uid -> host uid with the same role
    home: Dict[int, str] = dataclasses.field(default_factory=dict)     # the image's /etc/passwd home per uid
    programs: Dict[str, str] = dataclasses.field(default_factory=dict) # a program's absolute path in the image -> host path


def image_repository(ref: str) -> str:
    """`docker.io/library/postgres:17.7-bookworm` -> `docker.io/library/postgres`; short names get docker.io."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + name
    return name


def image_tag(ref: str) -> str:
    last = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


# --- process specs ---------------------------------------------------------------------------------

@dataclasses.dataclass
class VolumeMount:
    host_path: str
    container_path: str
    read_only: bool


@dataclasses.dataclass
class ProcessSpec:
    """One container as a process: argv, environment, identity and file-system view."""
    pod: str
    container: str
    init: bool
    image: str
    argv: List[str]
    env: Dict[str, str]
    cwd: str
    uid: int
    gid: int
    groups: List[int]
    read_only_root: bool
    no_new_privs: bool
    mounts: List[VolumeMount]
    stop_signal: str
    raw: Dict[str, Any]                  # the container as written in the manifest


def resolve_argv(container: Mapping[str, Any], image: Image, env: Mapping[str, str]) -> List[str]:
    """Docker's rule as the kubelet applies it: command replaces ENTRYPOINT (and drops CMD); args replaces CMD."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(image.entrypoint) + list(args if args is not None else image.cmd)
    if not argv:
        raise ManifestError(f"container {container['name']}: no command and the image has no entrypoint or cmd")
    # Only command/args from the manifest are expanded, the image's own words are not.
    expanded: List[str] = []
    n_entry = 0 if command else len(image.entrypoint)
    n_cmd_from_image = 0 if (command or args is not None) else len(image.cmd)
    for i, word in enumerate(argv):
        from_image = i < n_entry or (n_cmd_from_image and i >= len(argv) - n_cmd_from_image)
        expanded.append(word if from_image else expand(str(word), env))
    return expanded


def effective_ids(container: Mapping[str, Any], pod_spec: Mapping[str, Any], image: Image):
    pod_sc = pod_spec.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    uid = sc.get("runAsUser", pod_sc.get("runAsUser", image.user))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", 0 if uid == 0 else uid))
    groups = []
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    groups += [int(g) for g in pod_sc.get("supplementalGroups") or []]
    run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot", False))
    if run_as_non_root and int(uid) == 0:
        raise ManifestError(f"container {container['name']}: container has runAsNonRoot and image will run as root")
    return int(uid), int(gid), groups


def build_process(container: Mapping[str, Any], pod_spec: Mapping[str, Any], pod: PodContext, manifests: Manifests,
                  image: Image, svc_env: Mapping[str, str], volume_dirs: Mapping[str, str], init: bool) -> ProcessSpec:
    uid, gid, groups = effective_ids(container, pod_spec, image)
    kube_env = container_env(container, pod_spec, pod, manifests, svc_env)
    env = dict(image.env)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["HOSTNAME"] = pod_spec.get("hostname") or pod.name
    env.update(kube_env)
    if "HOME" not in env:  # the runtime sets HOME from the image's /etc/passwd, else /
        env["HOME"] = image.home.get(uid, "/root" if uid == 0 else "/")
    argv = resolve_argv(container, image, env)
    argv[0] = image.programs.get(argv[0], argv[0])
    mounts = []
    for m in container.get("volumeMounts") or []:
        if m["name"] not in volume_dirs:
            raise ManifestError(f"container {container['name']}: volumeMount {m['name']} names no volume of the pod")
        host = volume_dirs[m["name"]]
        if m.get("subPath"):
            host = os.path.join(host, expand(m["subPath"], env) if m.get("subPathExpr") else m["subPath"])
        mounts.append(VolumeMount(host, m["mountPath"], bool(m.get("readOnly"))))
    sc = container.get("securityContext") or {}
    host_uid = image.uid_map.get(uid, uid)
    return ProcessSpec(
        pod=pod.name, container=container["name"], init=init, image=container["image"], argv=argv, env=env,
        cwd=container.get("workingDir") or image.workdir, uid=host_uid, gid=gid, groups=groups,
        read_only_root=bool(sc.get("readOnlyRootFilesystem")), no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        mounts=mounts, stop_signal=image.stop_signal, raw=copy.deepcopy(dict(container)),
    )


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
