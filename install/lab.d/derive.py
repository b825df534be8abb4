#!/usr/bin/env python3
"""The lab's EndpointSlice controller (and kubelet, for the Pods): from the lab's pods (its
state directory) and the cluster's Services, the objects the cluster would have.

    derive.py LAB_DIR LAB_NAME SERVICES_JSON EXISTING_JSON DESIRED_JSON STALE_JSON

SERVICES_JSON: a List of the cluster's Services (as the stand-in API server lists them).
EXISTING_JSON: a List of the lab-made objects the cluster holds. DESIRED_JSON: a List of a
v1/Pod per lab pod and, for each Service with a selector, the EndpointSlices the controller
would make from the ready, not-ready and terminating pods of the Service's namespace (per
family of the Service's ipFamilies, one slice per distinct set of resolved ports). STALE_JSON: the lab-made objects no longer desired
(a deleted pod, the slices of a deleted Service). install/lab.d/cluster.py uses the functions.
Standard library only: this is lab plumbing, not product.
"""
import json
import os
import sys

MARK = "junction.io/lab"  # annotation on every object the lab derives
SLICE_LABEL = "kubernetes.io/service-name"


def read_lines(path):
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def read_pods(lab_dir):
    pods = []
    root = os.path.join(lab_dir, "pods")
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        d = os.path.join(root, name)
        ip = (read_lines(os.path.join(d, "ip")) or [None])[0]
        # Every address (IPv4 first in a dual-stack lab); a pod recorded before `ips`
        # existed has only `ip`.
        ips = read_lines(os.path.join(d, "ips")) or ([ip] if ip else [])
        node = (read_lines(os.path.join(d, "node")) or [None])[0]
        if not ip or not node:
            continue  # still being made
        labels = dict(l.split("=", 1) for l in read_lines(os.path.join(d, "labels")))
        ports = {k: int(v) for k, v in (l.split("=", 1) for l in read_lines(os.path.join(d, "ports")))}
        zone = (read_lines(os.path.join(lab_dir, "nodes", node, "zone")) or [None])[0]
        namespace = (read_lines(os.path.join(d, "namespace")) or ["default"])[0]
        state = (read_lines(os.path.join(d, "state")) or ["ready"])[0]
        pods.append({"name": name, "ip": ip, "ips": ips, "node": node, "labels": labels, "ports": ports,
                     "zone": zone, "namespace": namespace, "state": state})
    return pods


def key(doc):
    meta = doc.get("metadata") or {}
    kind = doc.get("kind")
    namespace = "" if kind == "Node" else (meta.get("namespace") or "default")
    return (kind, namespace, meta.get("name"))


# A pod's state → its EndpointSlice conditions, as the controller sets them: a terminating
# pod that still passes its readiness probe is serving (KEP-1672), never ready.
CONDITIONS = {
    "ready": {"ready": True, "serving": True, "terminating": False},
    "not-ready": {"ready": False, "serving": False, "terminating": False},
    "terminating": {"ready": False, "serving": True, "terminating": True},
}
# Set on a terminating pod (as the API server does on a graceful delete); fixed, so that
# deriving again changes nothing.
DELETION_TIMESTAMP = "2000-01-01T00:00:00Z"


def pod_object(pod, lab):
    ready = "True" if pod["state"] == "ready" else "False"
    meta = {"name": pod["name"], "namespace": pod["namespace"], "labels": pod["labels"],
            "annotations": {MARK: lab}}
    if pod["state"] == "terminating":
        meta["deletionTimestamp"] = DELETION_TIMESTAMP
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": pod["node"]},
        "status": {"phase": "Running", "podIP": pod["ip"], "podIPs": [{"ip": ip} for ip in pod["ips"]],
                   "conditions": [{"type": "Ready", "status": ready}]},
    }


def resolve_ports(service_ports, pod, service_name):
    """The slice ports for this pod, or None when a named targetPort is missing."""
    resolved = []
    for port in service_ports:
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, str) and not target.isdigit():
            if target not in pod["ports"]:
                print(f"lab: {service_name}: pod {pod['name']} has no port named '{target}' "
                      f"(pod add --port {target}=NUMBER); not an endpoint", file=sys.stderr)
                return None
            target = pod["ports"][target]
        entry = {"port": int(target), "protocol": port.get("protocol", "TCP")}
        if port.get("name"):
            entry["name"] = port["name"]
        resolved.append(entry)
    return resolved


def is_ipv6(address):
    return ":" in address


def service_families(spec):
    """The Service's address families, as the API server defaults them: spec.ipFamilies,
    else the families of its clusterIPs (clusterIP), else IPv4 (a single-stack IPv4
    cluster's default, and the lab's)."""
    families = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    if families:
        return families
    ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]
    return ["IPv6" if is_ipv6(ip) else "IPv4" for ip in ips] or ["IPv4"]


def slice_name(service_name, family, index):
    """IPv4 slices keep the names they always had; IPv6 ones are told apart by a suffix (the
    controller's names are <service>-<random>, one slice set per family)."""
    return f"{service_name}-lab{index}" if family == "IPv4" else f"{service_name}-ipv6-lab{index}"


def endpoint_slices(service, pods, lab):
    """The Service's slices: one set per family of the Service (addressType IPv4 from the
    pods' IPv4 addresses, IPv6 from their IPv6 ones), as the EndpointSlice controller makes
    them; none of a family the Service does not have."""
    spec = service.get("spec") or {}
    selector = spec.get("selector")
    if not selector or spec.get("type") == "ExternalName":
        return []
    slices = []
    for family in service_families(spec):
        slices.extend(family_slices(service, pods, lab, family))
    return slices


def family_slices(service, pods, lab, family):
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    selector = spec.get("selector")
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    groups = {}  # resolved ports (as JSON) -> endpoints
    for pod in pods:
        if pod["namespace"] != namespace or any(pod["labels"].get(k) != v for k, v in selector.items()):
            continue
        # The pod's address of this family; a pod without one (an IPv6-only pod for an
        # IPv4 slice) is left out, as the controller does per family.
        address = next((ip for ip in pod["ips"] if is_ipv6(ip) == (family == "IPv6")), None)
        if address is None:
            continue
        ports = resolve_ports(spec.get("ports", []), pod, name)
        if ports is None:
            continue
        # targetRef as the EndpointSlice controller writes it: what names a remote backend
        # in flows (a node's agent knows only its own node's pods otherwise).
        endpoint = {"addresses": [address],
                    "conditions": dict(CONDITIONS[pod["state"]]),
                    "nodeName": pod["node"],
                    "targetRef": {"kind": "Pod", "namespace": pod["namespace"], "name": pod["name"]}}
        if pod["zone"]:
            endpoint["zone"] = pod["zone"]
        groups.setdefault(json.dumps(ports, sort_keys=True), []).append(endpoint)
    if not groups:  # the controller keeps an empty slice for a Service with no endpoints
        groups["[]"] = []
    slices = []
    for index, (ports, endpoints) in enumerate(sorted(groups.items())):
        slices.append({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": slice_name(name, family, index), "namespace": namespace,
                         "labels": {SLICE_LABEL: name,
                                    "endpointslice.kubernetes.io/managed-by": "junction-lab"},
                         "annotations": {MARK: lab}},
            "addressType": family,
            "ports": json.loads(ports),
            "endpoints": endpoints,
        })
    return slices


def write_list(path, items):
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, indent=1)


def read_list(path):
    with open(path) as f:
        return json.load(f).get("items", [])


def derive(pods, services, lab):
    """The Pods and EndpointSlices the cluster should hold."""
    desired = [pod_object(p, lab) for p in pods]
    for doc in sorted(services, key=key):
        desired.extend(endpoint_slices(doc, pods, lab))
    return desired


def stale_objects(existing, desired, lab):
    """The lab-made objects among `existing` that are not desired."""
    wanted = {key(d) for d in desired}
    return [d for d in sorted(existing, key=key)
            if ((d.get("metadata") or {}).get("annotations") or {}).get(MARK) == lab
            and key(d) not in wanted]


def main():
    lab_dir, lab, services_path, existing_path, desired_path, stale_path = sys.argv[1:7]
    desired = derive(read_pods(lab_dir), read_list(services_path), lab)
    stale = stale_objects(read_list(existing_path), desired, lab)
    write_list(desired_path, desired)
    write_list(stale_path, stale)
    print(f"{len(desired)} {len(stale)}")


if __name__ == "__main__":
    main()
