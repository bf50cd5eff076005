"""NetworkPolicy semantics (networking.k8s.io/v1), evaluated on the manifests.

The stand-in cluster does not enforce policies (it has no packet filter), so a test states each
connection a program makes and asks whether the manifests' policies admit it: the source pod's
egress side and the destination pod's ingress side, as a policy-enforcing network plugin would.
"""
from __future__ import annotations

import ipaddress
from typing import Any, List, Mapping, Optional

from . import kube


def selects(selector: Optional[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """A LabelSelector: an empty one selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class Endpoint:
    """One side of a connection: a pod's labels, namespace and (optionally) address and named ports."""

    def __init__(self, labels: Mapping[str, str], namespace: str, ip: Optional[str] = None, ports: Optional[Mapping[str, int]] = None):
        self.labels = dict(labels)
        self.namespace = namespace
        self.ip = ip
        self.ports = dict(ports or {})


def workload_endpoint(manifests: kube.Manifests, workload: Mapping[str, Any], ip: Optional[str] = None) -> Endpoint:
    template = kube.pod_template(workload)
    ports = {p["name"]: int(p["containerPort"]) for c in template["spec"].get("containers") or [] for p in c.get("ports") or [] if p.get("name")}
    return Endpoint((template.get("metadata") or {}).get("labels") or {}, manifests.ns(workload), ip, ports)


def _types(policy: Mapping[str, Any]) -> List[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def _peer_matches(peer: Mapping[str, Any], other: Endpoint, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
    ns_selector = peer.get("namespaceSelector")
    if ns_selector is None:
        ns_ok = other.namespace == policy_ns
    else:
        ns_ok = selects(ns_selector, {"kubernetes.io/metadata.name": other.namespace})
    pod_selector = peer.get("podSelector")
    return ns_ok and (pod_selector is None or selects(pod_selector, other.labels))


def _port_matches(ports: Optional[List[Mapping[str, Any]]], port: int, protocol: str, named: Mapping[str, int]) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, str) and not want.isdigit():
            if named.get(want) == port:
                return True
            continue
        low, high = int(want), int(p.get("endPort", want))
        if low <= port <= high:
            return True
    return False


def _side(manifests: kube.Manifests, subject: Endpoint, other: Endpoint, port: int, protocol: str, direction: str) -> Optional[str]:
    """None when admitted; else the names of the policies that isolate `subject` in this direction."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolating = [p for p in manifests.of_kind("NetworkPolicy", subject.namespace)
                 if direction in _types(p) and selects((p.get("spec") or {}).get("podSelector") or {}, subject.labels)]
    if not isolating:
        return None
    # Named ports are resolved on the destination pod.
    named = subject.ports if direction == "Ingress" else other.ports
    for policy in isolating:
        for rule in (policy.get("spec") or {}).get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, other, manifests.ns(policy)) for peer in peers)) and _port_matches(rule.get("ports"), port, protocol, named):
                return None
    return ", ".join(p["metadata"]["name"] for p in isolating)


def check(manifests: kube.Manifests, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> Optional[str]:
    """None when the policies admit src -> dst:port; else why not (which side's policies refuse it)."""
    problems = []
    egress = _side(manifests, src, dst, port, protocol, "Egress")
    if egress is not None:
        problems.append(f"egress of the source is limited by {egress} and none of their rules admits it")
    ingress = _side(manifests, dst, src, port, protocol, "Ingress")
    if ingress is not None:
        problems.append(f"ingress of the destination is limited by {ingress} and none of their rules admits it")
    return "; ".join(problems) or None
