#!/usr/bin/env python3
"""The lab's stand-in for the Kubernetes control plane: from the lab's pods (its state
directory) and the Services the agents hold, writes the objects the cluster would have.

    derive.py LAB_DIR LAB_NAME DESIRED_JSON STALE_JSON

DESIRED_JSON: a `kind: List` of a v1/Pod per lab pod and, for each Service with a
selector, the EndpointSlices the EndpointSlice controller would make (one per distinct set
of resolved ports). STALE_JSON: the lab-made objects the agents hold that are no longer
desired (a deleted pod, the slices of a deleted Service). Both are JSON, which is YAML.

The Services are read from the first node's agent state (services/snapshot.json and the
journal segments): the agent already parsed the user's YAML, so the lab needs no YAML parser.
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
        node = (read_lines(os.path.join(d, "node")) or [None])[0]
        if not ip or not node:
            continue  # still being made
        labels = dict(l.split("=", 1) for l in read_lines(os.path.join(d, "labels")))
        ports = {k: int(v) for k, v in (l.split("=", 1) for l in read_lines(os.path.join(d, "ports")))}
        zone = (read_lines(os.path.join(lab_dir, "nodes", node, "zone")) or [None])[0]
        pods.append({"name": name, "ip": ip, "node": node, "labels": labels, "ports": ports, "zone": zone})
    return pods


def key(doc):
    meta = doc.get("metadata") or {}
    kind = doc.get("kind")
    namespace = "" if kind == "Node" else (meta.get("namespace") or "default")
    return (kind, namespace, meta.get("name"))


def stored_objects(state_dir):
    """The agent's objects: its snapshot, then the journal records after it."""
    objects = {}
    sequence = 0
    try:
        with open(os.path.join(state_dir, "snapshot.json")) as f:
            snapshot = json.load(f)
        for doc in snapshot.get("items", []):
            objects[key(doc)] = doc
        sequence = snapshot.get("junction", {}).get("sequence", 0)
    except FileNotFoundError:
        pass
    # A compaction under way has closed its segment (journal.closed.jsonl); it comes first.
    lines = []
    for name in ("journal.closed.jsonl", "journal.jsonl"):
        lines += read_lines(os.path.join(state_dir, name))
    for line in lines:
        record = json.loads(line)
        if record.get("sequence", 0) <= sequence:
            continue
        for doc in record.get("stored", []):
            objects[key(doc)] = doc
        for removed in record.get("removed", []):
            objects.pop((removed["kind"], removed["namespace"], removed["name"]), None)
    return objects


def pod_object(pod, lab):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod["name"], "namespace": "default", "labels": pod["labels"],
                     "annotations": {MARK: lab}},
        "spec": {"nodeName": pod["node"]},
        "status": {"phase": "Running", "podIP": pod["ip"], "podIPs": [{"ip": pod["ip"]}],
                   "conditions": [{"type": "Ready", "status": "True"}]},
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


def endpoint_slices(service, pods, lab):
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    selector = spec.get("selector")
    if not selector or spec.get("type") == "ExternalName":
        return []
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    groups = {}  # resolved ports (as JSON) -> endpoints
    for pod in pods:
        if namespace != "default" or any(pod["labels"].get(k) != v for k, v in selector.items()):
            continue
        ports = resolve_ports(spec.get("ports", []), pod, name)
        if ports is None:
            continue
        endpoint = {"addresses": [pod["ip"]],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": pod["node"]}
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
            "metadata": {"name": f"{name}-lab{index}", "namespace": namespace,
                         "labels": {SLICE_LABEL: name,
                                    "endpointslice.kubernetes.io/managed-by": "junction-lab"},
                         "annotations": {MARK: lab}},
            "addressType": "IPv4",
            "ports": json.loads(ports),
            "endpoints": endpoints,
        })
    return slices


def write_list(path, items):
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, indent=1)


def main():
    lab_dir, lab, desired_path, stale_path = sys.argv[1:5]
    pods = read_pods(lab_dir)
    nodes = sorted(os.listdir(os.path.join(lab_dir, "nodes")))
    stored = stored_objects(os.path.join(lab_dir, "nodes", nodes[0], "state", "services"))
    desired = [pod_object(p, lab) for p in pods]
    for doc in sorted((d for d in stored.values() if d.get("kind") == "Service"), key=key):
        desired.extend(endpoint_slices(doc, pods, lab))
    wanted = {key(d) for d in desired}
    stale = [d for k, d in sorted(stored.items())
             if ((d.get("metadata") or {}).get("annotations") or {}).get(MARK) == lab and k not in wanted]
    write_list(desired_path, desired)
    write_list(stale_path, stale)
    print(f"{len(desired)} {len(stale)}")


if __name__ == "__main__":
    main()
