#!/usr/bin/env python3
"""The lab's kubectl and control plane, against the lab's stand-in API server
(tools/standin-apiserver, in the underlay namespace; run this there: `ip netns exec
LAB-underlay`).

    cluster.py LAB_DIR LAB_NAME apply FILE|-    create or replace the YAML's objects
    cluster.py LAB_DIR LAB_NAME delete FILE|-   delete them
    cluster.py LAB_DIR LAB_NAME nodes           a v1/Node per lab node, with its zone
    cluster.py LAB_DIR LAB_NAME sync            the Pods and EndpointSlices of the lab's pods
    cluster.py LAB_DIR LAB_NAME get KIND NS/NAME         print the object (JSON), exit 1 if none
    cluster.py LAB_DIR LAB_NAME set-status KIND NS/NAME JSON
                                                merge-patch its status subresource (the lab
                                                playing a controller, e.g. the LB provider)

Every command then derives the lab's Pods and EndpointSlices (derive.py) from the cluster's
Services and the lab's pods, writes what changed, deletes what is stale, and waits until
every node's agent has applied everything it follows (its `junctionctl status` cluster
section: the resourceVersion it applied and each resource's object count). A delete first
touches the object (an annotation), so that the version an agent last saw of it is newer
than every write before. Needs PyYAML (python3-yaml, install/deps.sh test); lab plumbing.
"""
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import derive  # noqa: E402

# kind -> (API path prefix, plural, namespaced)
KINDS = {
    "Service": ("/api/v1", "services", True),
    "Pod": ("/api/v1", "pods", True),
    "Node": ("/api/v1", "nodes", False),
    "Namespace": ("/api/v1", "namespaces", False),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
    "LocalRedirectPolicy": ("/apis/junction.io/v1alpha1", "localredirectpolicies", True),
    "CiliumLocalRedirectPolicy": ("/apis/cilium.io/v2", "ciliumlocalredirectpolicies", True),
    # The L7 kinds (issue 14).
    "CiliumEnvoyConfig": ("/apis/cilium.io/v2", "ciliumenvoyconfigs", True),
    "CiliumClusterwideEnvoyConfig": ("/apis/cilium.io/v2", "ciliumclusterwideenvoyconfigs", False),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses", True),
    "Secret": ("/api/v1", "secrets", True),
}
# The agents' resources as their status names them -> kind.
FOLLOWED = {
    "services": "Service",
    "endpointslices.discovery.k8s.io": "EndpointSlice",
    "nodes": "Node",
    "pods": "Pod",
    "localredirectpolicies.junction.io": "LocalRedirectPolicy",
    "ciliumlocalredirectpolicies.cilium.io": "CiliumLocalRedirectPolicy",
    "ciliumenvoyconfigs.cilium.io": "CiliumEnvoyConfig",
    "ciliumclusterwideenvoyconfigs.cilium.io": "CiliumClusterwideEnvoyConfig",
    "ingresses.networking.k8s.io": "Ingress",
}
# The label selector the agents follow Services and EndpointSlices with (kube-proxy's).
SKIPPED_LABELS = ("service.kubernetes.io/headless", "service.kubernetes.io/service-proxy-name")
TOUCH = "junction.io/lab-deleting"
WAIT_SECONDS = 60


def fail(message):
    print(f"lab: {message}", file=sys.stderr)
    sys.exit(1)


class API:
    def __init__(self, lab_dir):
        directory = os.path.join(lab_dir, "apiserver")
        with open(os.path.join(directory, "url")) as f:
            self.url = f.read().strip()
        with open(os.path.join(directory, "token")) as f:
            self.token = f.read().strip()
        self.context = ssl.create_default_context(cafile=os.path.join(directory, "ca.crt"))

    def request(self, method, path, body=None):
        """(status, decoded body)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header(
                "Content-Type", "application/merge-patch+json" if method == "PATCH" else "application/json")
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def list(self, kind):
        prefix, plural, _ = KINDS[kind]
        code, body = self.request("GET", f"{prefix}/{plural}")
        if code == 404:
            return []
        if code != 200:
            fail(f"cannot list {plural}: {body.get('message', code)}")
        return [dict(item, kind=kind) for item in body.get("items", [])]


def path_of(doc):
    kind = doc.get("kind")
    if kind not in KINDS:
        fail(f"{kind or 'an object without a kind'}: not served by the lab's stand-in API server "
             f"(it serves {', '.join(sorted(KINDS))})")
    prefix, plural, namespaced = KINDS[kind]
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        fail(f"a {kind} without metadata.name")
    if namespaced:
        return f"{prefix}/namespaces/{meta.get('namespace') or 'default'}/{plural}", name
    return f"{prefix}/{plural}", name


def documents(file):
    import yaml  # only the commands that read YAML need it

    text = sys.stdin.read() if file == "-" else open(file).read()
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as error:
        fail(f"{file}: not YAML: {error}")
    out = []
    for doc in docs:
        out.extend(doc.get("items") or [] if doc.get("kind") == "List" else [doc])
    return out


def comparable(doc):
    """An object as compared for "unchanged": without what the server sets."""
    doc = json.loads(json.dumps(doc))
    doc.pop("kind", None)
    doc.pop("apiVersion", None)
    meta = doc.setdefault("metadata", {})
    for field in ("resourceVersion", "uid", "creationTimestamp"):
        meta.pop(field, None)
    return doc


class Cluster:
    def __init__(self, lab_dir, lab):
        self.lab_dir, self.lab, self.api = lab_dir, lab, API(lab_dir)
        self.deleted = []  # (kind, the touched object) for the wait

    def put(self, doc, quiet=False):
        collection, name = path_of(doc)
        kind = doc["kind"]
        code, current = self.api.request("GET", f"{collection}/{name}")
        body = comparable(doc)
        if KINDS[kind][2]:
            body["metadata"]["namespace"] = body["metadata"].get("namespace") or "default"
        if code == 200:
            if comparable(current) == body:
                verb, answer = "unchanged", current
            else:
                code, answer = self.api.request("PUT", f"{collection}/{name}", body)
                verb = "configured"
        else:
            code, answer = self.api.request("POST", collection, body)
            verb = "created"
        if code not in (200, 201):
            fail(f"{kind.lower()}/{name}: {answer.get('message', code)}")
        if not quiet:
            print(f"{kind.lower()}/{name} {verb}")

    def delete(self, doc, quiet=False):
        collection, name = path_of(doc)
        kind = doc["kind"]
        code, current = self.api.request("GET", f"{collection}/{name}")
        if code == 404:
            if not quiet:
                print(f"{kind.lower()}/{name}: not found")
            return
        touched = comparable(current)
        touched["metadata"].setdefault("annotations", {})[TOUCH] = "true"
        code, answer = self.api.request("PUT", f"{collection}/{name}", touched)
        if code == 200:
            self.deleted.append(dict(answer, kind=kind))
        code, answer = self.api.request("DELETE", f"{collection}/{name}")
        if code not in (200, 404):
            fail(f"{kind.lower()}/{name}: {answer.get('message', code)}")
        if not quiet:
            print(f"{kind.lower()}/{name} deleted")

    def nodes(self):
        for node in node_names(self.lab_dir):
            zone = read(os.path.join(self.lab_dir, "nodes", node, "zone"))
            self.put({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": node, "labels": {
                          "kubernetes.io/hostname": node, "topology.kubernetes.io/zone": zone}}},
                     quiet=True)

    def sync(self):
        """The lab's Pods and EndpointSlices, as kubelet and the controller would keep them."""
        existing = [o for kind in ("Pod", "EndpointSlice") for o in self.api.list(kind)
                    if ((o.get("metadata") or {}).get("annotations") or {}).get(derive.MARK) == self.lab]
        desired = derive.derive(derive.read_pods(self.lab_dir), self.api.list("Service"), self.lab)
        for doc in desired:
            self.put(doc, quiet=True)
        for doc in derive.stale_objects(existing, desired, self.lab):
            self.delete(doc, quiet=True)

    def wait(self):
        """Until every node's agent has applied what it follows (or WAIT_SECONDS)."""
        deadline = time.monotonic() + WAIT_SECONDS
        for node in node_names(self.lab_dir):
            while True:
                # Listed again on every try: agents write too (an Ingress's Service), so
                # the cluster may have moved on since the change this waits for.
                objects = {kind: self.api.list(kind) for kind in FOLLOWED.values()}
                want = expected(node, objects, self.deleted)
                seen = agent_view(self.lab_dir, node)
                if seen is not None and caught_up(seen, want):
                    break
                if time.monotonic() > deadline:
                    fail(f"{node}'s agent has not caught up with the API after {WAIT_SECONDS} s: "
                         f"wants {want}, has {seen}")
                time.sleep(0.05)


def followed_by(node, kind, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if kind in ("Service", "EndpointSlice"):
        return not any(label in labels for label in SKIPPED_LABELS)
    if kind == "Node":
        return obj["metadata"]["name"] == node
    if kind == "Pod":
        return (obj.get("spec") or {}).get("nodeName") == node
    return True


def version(obj):
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


def expected(node, objects, deleted):
    """(the resourceVersion the agent must have applied, {resource: object count})."""
    counts, newest = {}, 0
    for resource, kind in FOLLOWED.items():
        mine = [o for o in objects[kind] if followed_by(node, kind, o)]
        counts[resource] = len(mine)
        newest = max([newest] + [version(o) for o in mine])
    for obj in deleted:
        if followed_by(node, obj["kind"], obj):
            newest = max(newest, version(obj))
    return newest, counts


def agent_view(lab_dir, node):
    """(applied resourceVersion or None, {resource: objects}) from the node's agent."""
    env = dict(os.environ)
    result = subprocess.run(
        [os.path.join(env.get("BIN", ""), "junctionctl"), "--socket",
         os.path.join(lab_dir, "nodes", node, "run", "agent.sock"), "status", "-o", "json"],
        capture_output=True, text=True)
    if result.returncode != 0:
        return None
    cluster = json.loads(result.stdout).get("cluster") or {}
    if not cluster.get("synced"):
        return None
    applied = cluster.get("appliedResourceVersion")
    counts = {r["resource"]: r["objects"] for r in cluster.get("resources", [])
              if r.get("state") != "not-installed"}
    return (int(applied) if applied else None), counts


def caught_up(seen, want):
    applied, counts = seen
    newest, wanted = want
    if applied is None or applied < newest:
        return False
    return all(counts.get(resource, 0) == count for resource, count in wanted.items()
               if resource in counts or count)


def read(path):
    with open(path) as f:
        return f.read().strip()


def node_names(lab_dir):
    root = os.path.join(lab_dir, "nodes")
    return sorted((n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n))),
                  key=lambda n: int(n[4:]) if n[4:].isdigit() else 0)


def main():
    if len(sys.argv) < 4:
        fail(__doc__)
    lab_dir, lab, command = sys.argv[1:4]
    cluster = Cluster(lab_dir, lab)
    if command in ("get", "set-status"):
        if len(sys.argv) < (6 if command == "get" else 7) or "/" not in sys.argv[5]:
            fail(f"usage: {command} KIND NAMESPACE/NAME" + (" JSON" if command == "set-status" else ""))
        namespace, name = sys.argv[5].split("/", 1)
        collection, _ = path_of({"kind": sys.argv[4], "metadata": {"name": name, "namespace": namespace}})
        if command == "get":
            code, answer = cluster.api.request("GET", f"{collection}/{name}")
        else:
            code, answer = cluster.api.request(
                "PATCH", f"{collection}/{name}/status", {"status": json.loads(sys.argv[6])})
        if code != 200:
            fail(f"{sys.argv[4].lower()}/{sys.argv[5]}: {answer.get('message', code)}")
        print(json.dumps(answer))
        return
    if command == "apply":
        for doc in documents(sys.argv[4]):
            cluster.put(doc)
    elif command == "delete":
        for doc in documents(sys.argv[4]):
            cluster.delete(doc)
    elif command == "nodes":
        cluster.nodes()
    elif command != "sync":
        fail(f"unknown command {command}")
    cluster.sync()
    cluster.wait()


if __name__ == "__main__":
    main()
