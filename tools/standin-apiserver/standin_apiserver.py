#!/usr/bin/env python3
"""A STAND-IN for the Kubernetes API server, for Junction's tests and lab only.

Not part of the product, and not a Kubernetes API server: there is no kube-apiserver on these
machines, so this serves the small part of the API the agent follows, written from the API
concepts (kubernetes.io/docs/reference/using-api/api-concepts):

- objects in memory (and in --state, so a restart keeps them), one resourceVersion counter;
- GET collections (all namespaces, or /namespaces/NS/...) and single objects; POST, PUT,
  PATCH (JSON merge patch only) and DELETE objects (the API's own verbs, which tests use to
  change the cluster; a PUT of the object replaces it whole, status too, and creates it when
  missing); PUT and PATCH of the `status` subresource (only .status changes; a PATCH of the
  object keeps its status), as the agent writes an Ingress's status and a test, acting as the
  LB provider, a Service's; deleting an object deletes the objects
  whose ownerReferences name its uid, and an object written with ownerReferences none of
  which exists is deleted too (the garbage collector, at once);
- LIST with limit/continue (all pages one snapshot; resourceVersion=0 ignores limit, as the
  watch cache does); an expired continue token is 410;
- WATCH (?watch=true) from a resourceVersion: ADDED/MODIFIED/DELETED as objects enter, change
  in, and leave the selectors; BOOKMARK events with allowWatchBookmarks; timeoutSeconds;
  a version older than the compaction window gets an ERROR event with a 410 Status in a 200
  stream; resourceVersion 0 or unset starts with synthetic ADDEDs;
- label selectors (k, !k, k=v, k==v, k!=v, k in (..), k notin (..)) and the field selectors
  metadata.name, metadata.namespace, spec.nodeName (=, ==, !=);
- HTTPS with a CA it makes (openssl), a bearer token read from --token-file on every request
  (401 otherwise), 403 for verb/resource pairs given with --forbid (the RBAC message), 404 for
  CRDs left out with --without.

It writes ca.crt, token and kubeconfig into --dir, and prints "listening PORT" once ready.
Test hooks (not Kubernetes API): POST /standin/compact (forget the history: older versions
get 410), POST /standin/hold-watches (open watches stop sending, as a stuck server would),
POST /standin/drop-watches (close every open watch, ending a hold), POST /standin/garbage-watches
(every open watch sends one line that is not an event, as a broken proxy might).
"""

import argparse
import base64
import bisect
import copy
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (group, version, plural) -> (kind, namespaced)
RESOURCES = {
    ("", "v1", "services"): ("Service", True),
    ("", "v1", "pods"): ("Pod", True),
    ("", "v1", "nodes"): ("Node", False),
    ("", "v1", "namespaces"): ("Namespace", False),
    ("discovery.k8s.io", "v1", "endpointslices"): ("EndpointSlice", True),
    ("junction.io", "v1alpha1", "localredirectpolicies"): ("LocalRedirectPolicy", True),
    ("cilium.io", "v2", "ciliumlocalredirectpolicies"): ("CiliumLocalRedirectPolicy", True),
    # The L7 kinds (issue 14).
    ("cilium.io", "v2", "ciliumenvoyconfigs"): ("CiliumEnvoyConfig", True),
    ("cilium.io", "v2", "ciliumclusterwideenvoyconfigs"): ("CiliumClusterwideEnvoyConfig", False),
    ("networking.k8s.io", "v1", "ingresses"): ("Ingress", True),
    ("", "v1", "secrets"): ("Secret", True),
}
CRDS = {
    "localredirectpolicies.junction.io", "ciliumlocalredirectpolicies.cilium.io",
    "ciliumenvoyconfigs.cilium.io", "ciliumclusterwideenvoyconfigs.cilium.io",
}
# "type": Secrets by type (the agent lists kubernetes.io/tls ones only).
FIELDS = {"metadata.name", "metadata.namespace", "spec.nodeName", "type"}


def api_version(group, version):
    return f"{group}/{version}" if group else version


def rbac_name(group, plural):
    return f"{plural}.{group}" if group else plural


class SelectorError(Exception):
    pass


def split_terms(text):
    terms, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        terms.append(current.strip())
    return terms


def label_matcher(text):
    checks = []
    for term in split_terms(text or ""):
        words = term.split()
        if len(words) == 3 and words[1] in ("in", "notin"):
            key, op, values = words[0], words[1], words[2]
            if not (values.startswith("(") and values.endswith(")")):
                raise SelectorError(f"bad set in {term!r}")
            allowed = {v.strip() for v in values[1:-1].split(",")}
            if op == "in":
                checks.append(lambda l, k=key, a=allowed: l.get(k) in a)
            else:
                checks.append(lambda l, k=key, a=allowed: l.get(k) not in a)
        elif "!=" in term:
            key, value = term.split("!=", 1)
            checks.append(lambda l, k=key.strip(), v=value.strip(): l.get(k) != v)
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            checks.append(lambda l, k=key.strip(), v=value.strip(): l.get(k) == v)
        elif term.startswith("!"):
            checks.append(lambda l, k=term[1:].strip(): k not in l)
        else:
            checks.append(lambda l, k=term: k in l)
    return lambda obj: all(c(obj.get("metadata", {}).get("labels") or {}) for c in checks)


def field_value(obj, path):
    value = obj
    for part in path.split("."):
        value = (value or {}).get(part)
    return value or ""


def field_matcher(text):
    checks = []
    for term in split_terms(text or ""):
        negate = "!=" in term
        key, value = term.split("!=" if negate else ("==" if "==" in term else "="), 1)
        if key not in FIELDS:
            raise SelectorError(f'field label not supported: {key}')
        checks.append(lambda o, k=key, v=value, n=negate: (field_value(o, k) == v) != n)
    return lambda obj: all(c(obj) for c in checks)


class Store:
    def __init__(self, window, state_file):
        self.lock = threading.Condition()
        self.rv = 1
        self.objects = {}  # (group, plural, ns, name) -> object (never changed once stored)
        # Each stored object as JSON, made once: a LIST joins these instead of copying and
        # encoding every object again (kube-apiserver's watch cache also keeps objects
        # serialized). Dropped on every write of the key.
        self.encoded = {}
        self.events = []  # (rv, group, plural, type, old, new)
        self.window = window
        self.oldest = 1  # versions below this are compacted
        self.state_file = state_file
        self.snapshots = {}
        self.watch_generation = 0
        self.garbage_generation = 0
        self.held = False
        self.journal = None
        if state_file:
            self.load(state_file)
            self.journal = open(state_file, "a")

    def load(self, path):
        """A snapshot line ({"rv", "oldest", "objects", "events"}, optional) then one line per
        write or compaction, replayed as they happened."""
        if not os.path.exists(path):
            return
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                entry = json.loads(line)
                if isinstance(entry, dict):
                    self.rv, self.oldest = entry["rv"], entry["oldest"]
                    for item in entry["objects"]:
                        self.objects[tuple(item["key"])] = item["object"]
                    self.events = [tuple(e) for e in entry["events"]]
                    for key in self.objects:
                        self.encoded_object(key)
                elif entry[0] == "write":
                    self.write(*entry[1:])
                elif entry[0] == "compact":
                    self.compact()

    def save(self, *entry):
        """One journal line per change (a restart of the stand-in keeps every object and
        version, and answers 410 for what was compacted)."""
        if self.journal:
            self.journal.write(json.dumps(list(entry)) + "\n")
            self.journal.flush()

    def write(self, group, plural, ns, name, new):
        """Create/replace (new is an object) or delete (new None); returns the stored object."""
        with self.lock:
            key = (group, plural, ns, name)
            old = self.objects.get(key)
            if new is None and old is None:
                return None
            self.rv += 1
            self.encoded.pop(key, None)
            if new is None:
                del self.objects[key]
                gone = copy.deepcopy(old)
                gone["metadata"]["resourceVersion"] = str(self.rv)
                self.events.append((self.rv, group, plural, "DELETED", old, gone))
                result = gone
            else:
                meta = new.setdefault("metadata", {})
                meta["resourceVersion"] = str(self.rv)
                meta.setdefault("uid", old["metadata"].get("uid") if old else str(uuid.uuid4()))
                if ns:
                    meta["namespace"] = ns
                self.objects[key] = new
                kind = "MODIFIED" if old is not None else "ADDED"
                self.events.append((self.rv, group, plural, kind, old, new))
                result = new
            if len(self.events) > self.window:
                dropped = self.events[: len(self.events) - self.window]
                self.events = self.events[len(self.events) - self.window:]
                self.oldest = dropped[-1][0] + 1
            # Journaled as stored (with its uid), so a replay gives the same object.
            self.save("write", group, plural, ns, name, None if new is None else result)
            self.lock.notify_all()
            return result

    def encoded_object(self, key):
        """The stored object of `key` as JSON bytes (under the lock)."""
        data = self.encoded.get(key)
        if data is None:
            data = self.encoded[key] = json.dumps(self.objects[key]).encode()
        return data

    def events_after(self, since, group, plural):
        """The kept events of one collection newer than `since` (events are in version order)."""
        start = bisect.bisect_right(self.events, since, key=lambda e: e[0])
        return [e for e in self.events[start:] if e[1] == group and e[2] == plural]

    def compact(self):
        self.save("compact")
        with self.lock:
            self.events = []
            self.oldest = self.rv + 1
            self.lock.notify_all()

    def drop_watches(self):
        with self.lock:
            self.watch_generation += 1
            self.held = False
            self.lock.notify_all()

    def garbage_watches(self):
        with self.lock:
            self.garbage_generation += 1
            self.lock.notify_all()

    def hold_watches(self):
        with self.lock:
            self.held = True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "junction-standin-apiserver"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("standin: " + fmt % args + "\n")

    # --- plumbing -------------------------------------------------------------------------
    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code, reason, message, extra=None):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}
        if extra:
            body.update(extra)
        self.send_json(code, body)

    def authorized(self):
        try:
            with open(self.server.token_file) as f:
                tokens = {line.strip() for line in f if line.strip()}
        except OSError:
            tokens = set()
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and header[7:].strip() in tokens:
            return True
        self.status(401, "Unauthorized", "Unauthorized")
        return False

    def route(self):
        """(group, version, plural, namespace, name, query) or None after answering."""
        parsed = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        parts = [p for p in parsed.path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            self.status(404, "NotFound", f"the server could not find the requested resource ({parsed.path})")
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        # The status subresource (PUT/PATCH .../NAME/status): recorded for write_object.
        self.subresource = rest[2] if len(rest) > 2 else None
        if self.subresource not in (None, "status"):
            self.status(404, "NotFound", f"the server could not find the requested resource ({parsed.path})")
            return None
        known = RESOURCES.get((group, version, plural))
        if known is None or rbac_name(group, plural) in self.server.without:
            self.status(404, "NotFound", "the server could not find the requested resource")
            return None
        return group, version, plural, namespace, name, query

    def allowed(self, verb, group, plural):
        if (verb, rbac_name(group, plural)) not in self.server.forbid:
            return True
        user = "system:serviceaccount:junction-system:junction-agent"
        self.status(403, "Forbidden",
                    f'{rbac_name(group, plural)} is forbidden: User "{user}" cannot {verb} resource '
                    f'"{plural}" in API group "{group}" at the cluster scope',
                    {"details": {"group": group, "kind": plural}})
        return False

    def authorized_route(self):
        """The route of an authorized request, or None after answering 401/404."""
        return self.route() if self.authorized() else None

    # --- verbs ----------------------------------------------------------------------------
    def do_GET(self):
        routed = self.authorized_route()
        if routed is None:
            return
        group, version, plural, namespace, name, query = routed
        store = self.server.store
        if name is not None:
            if not self.allowed("get", group, plural):
                return
            with store.lock:
                obj = store.objects.get((group, plural, namespace or "", name))
            if obj is None:
                self.status(404, "NotFound", f'{plural} "{name}" not found')
            else:
                self.send_json(200, self.complete(obj, group, version, plural))
            return
        try:
            labels = label_matcher(query.get("labelSelector"))
            fields = field_matcher(query.get("fieldSelector"))
        except (SelectorError, ValueError) as error:
            self.status(400, "BadRequest", f"invalid selector: {error}")
            return

        def matches(obj):
            if obj is None:
                return False
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return labels(obj) and fields(obj)

        if query.get("watch") in ("true", "1"):
            if self.allowed("watch", group, plural):
                self.watch(group, version, plural, matches, query)
        elif self.allowed("list", group, plural):
            self.list(group, version, plural, matches, query)

    def complete(self, obj, group, version, plural):
        kind, _ = RESOURCES[(group, version, plural)]
        return dict(obj, kind=kind, apiVersion=api_version(group, version))

    def list(self, group, version, plural, matches, query):
        store = self.server.store
        kind, _ = RESOURCES[(group, version, plural)]
        token = query.get("continue")
        limit = int(query.get("limit") or 0)
        if token:
            try:
                snapshot_id, start = json.loads(base64.b64decode(token))
            except ValueError:
                self.status(400, "BadRequest", "invalid continue token")
                return
            with store.lock:
                snapshot = store.snapshots.get(snapshot_id)
                if snapshot is None or snapshot[0] < store.oldest:
                    self.status(410, "Expired", "The provided continue parameter is too old to "
                                "display a consistent list result. You can start a new list without "
                                "the continue parameter.")
                    return
            rv, items = snapshot
        else:
            with store.lock:
                rv = store.rv
                # Encoded now: the pages of one list are one snapshot, whatever is written later.
                items = [store.encoded_object(k) for k, o in sorted(store.objects.items())
                         if k[0] == group and k[1] == plural and matches(o)]
            start = 0
            if query.get("resourceVersion") == "0":
                limit = 0  # the watch cache serves the whole list, limit ignored
        page, more = items[start:], None
        if limit and len(page) > limit:
            page = page[:limit]
            snapshot_id = str(uuid.uuid4())
            with store.lock:
                store.snapshots[snapshot_id] = (rv, items)
            more = base64.b64encode(json.dumps([snapshot_id, start + limit]).encode()).decode()
        # Items of a real LIST carry no kind/apiVersion; the List does. The items are joined
        # as encoded (see Store.encoded).
        head = json.dumps({
            "kind": kind + "List", "apiVersion": api_version(group, version),
            "metadata": {"resourceVersion": str(rv), **({"continue": more} if more else {})},
        })
        data = b"%s, \"items\": [%s]}" % (head[:-1].encode(), b", ".join(page))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def watch(self, group, version, plural, matches, query):
        store = self.server.store
        timeout = int(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        # A watch's connection is closed when the watch ends (below): say so, or a client
        # that pools connections reuses it for its next request and finds it closed.
        self.send_header("Connection", "close")
        self.end_headers()

        def send_raw(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def send(event_type, obj):
            send_raw(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

        kind, _ = RESOURCES[(group, version, plural)]
        version_text = query.get("resourceVersion", "")
        try:
            with store.lock:
                generation = store.watch_generation
                garbage = store.garbage_generation
                if version_text in ("", "0"):
                    since = store.rv
                    for key, obj in sorted(store.objects.items()):
                        if key[0] == group and key[1] == plural and matches(obj):
                            send("ADDED", self.complete(obj, group, version, plural))
                else:
                    since = int(version_text)
                    if since + 1 < store.oldest:
                        send("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                       "status": "Failure", "reason": "Expired", "code": 410,
                                       "message": f"too old resource version: {since} ({store.oldest - 1})"})
                        self.wfile.write(b"0\r\n\r\n")
                        return
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self.server.bookmark_interval
            while True:
                with store.lock:
                    pending = store.events_after(since, group, plural)
                    if not pending:
                        wait = min(deadline, next_bookmark) - time.monotonic()
                        if wait > 0:
                            store.lock.wait(wait)
                        pending = store.events_after(since, group, plural)
                    if store.watch_generation != generation:
                        break
                    if store.held:
                        store.lock.wait(0.1)
                        continue
                    current = store.rv
                    if store.garbage_generation != garbage:
                        garbage = store.garbage_generation
                        send_raw(b'this is not an event: {"\n')
                for rv, _, _, event_type, old, new in pending:
                    before, after = matches(old), (event_type != "DELETED" and matches(new))
                    if before and after:
                        send("MODIFIED", self.complete(new, group, version, plural))
                    elif after:
                        send("ADDED", self.complete(new, group, version, plural))
                    elif before:
                        send("DELETED", self.complete(new, group, version, plural))
                    since = rv
                now = time.monotonic()
                if bookmarks and now >= next_bookmark:
                    since = max(since, current)
                    send("BOOKMARK", {"kind": kind, "apiVersion": api_version(group, version),
                                      "metadata": {"resourceVersion": str(since)}})
                    next_bookmark = now + self.server.bookmark_interval
                if now >= deadline:
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        finally:
            self.close_connection = True

    def read_body(self):
        """Every writing verb reads its request's body first: an answer sent without reading
        it (401, 403, 404) would leave it on the kept-alive connection, to be parsed as the
        next request. (One handler serves every request of a connection.)"""
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length)

    def body(self):
        return json.loads(self._body or b"{}")

    def do_POST(self):
        self.read_body()
        if not self.authorized():
            return
        if self.path.startswith("/standin/"):
            if self.path == "/standin/compact":
                self.server.store.compact()
            elif self.path == "/standin/drop-watches":
                self.server.store.drop_watches()
            elif self.path == "/standin/hold-watches":
                self.server.store.hold_watches()
            elif self.path == "/standin/garbage-watches":
                self.server.store.garbage_watches()
            else:
                self.status(404, "NotFound", "no such stand-in hook")
                return
            self.send_json(200, {"resourceVersion": str(self.server.store.rv)})
            return
        self.write_object(create=True)

    def do_PUT(self):
        self.read_body()
        if self.authorized():
            self.write_object(create=False)

    def do_PATCH(self):
        self.read_body()
        if self.authorized():
            self.write_object(create=False, patch=True)

    def write_object(self, create, patch=False):
        routed = self.route()
        if routed is None:
            return
        group, version, plural, namespace, name, _ = routed
        subresource = self.subresource
        if create and subresource:
            self.status(405, "MethodNotAllowed", "create is not allowed on a subresource")
            return
        verb = "create" if create else "patch" if patch else "update"
        if not self.allowed(verb, group, plural + ("/" + subresource if subresource else "")):
            return
        obj = self.body()
        if patch or subresource:
            # PATCH (JSON merge patch, RFC 7386: application/merge-patch+json only) and the
            # status subresource (only .status changes; the rest of the body is ignored).
            if patch and self.headers.get("Content-Type") != "application/merge-patch+json":
                self.status(415, "UnsupportedMediaType", "the stand-in takes merge patches only")
                return
            _, namespaced = RESOURCES[(group, version, plural)]
            key = (group, plural, (namespace or "default") if namespaced else "", name)
            with self.server.store.lock:
                current = copy.deepcopy(self.server.store.objects.get(key))
            if current is None:
                self.status(404, "NotFound", f'{plural} "{name}" not found')
                return
            merged = merge_patch(current, obj) if patch else dict(current, status=obj.get("status"))
            if subresource:
                merged = dict(current, status=merged.get("status"))
            else:
                merged["status"] = current.get("status")
            if merged.get("status") is None:
                merged.pop("status", None)
            merged["metadata"] = current["metadata"]
            obj = merged
        name = name or obj.get("metadata", {}).get("name")
        _, namespaced = RESOURCES[(group, version, plural)]
        ns = (namespace or obj.get("metadata", {}).get("namespace") or "default") if namespaced else ""
        if not name:
            self.status(422, "Invalid", "metadata.name: Required value")
            return
        store = self.server.store
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        # One lock over the check and the write (the Condition's lock is re-entrant): of
        # agents creating the same object at once, one gets 201 and the others 409.
        with store.lock:
            current = store.objects.get((group, plural, ns, name))
            if create and current is not None:
                self.status(409, "AlreadyExists", f'{plural} "{name}" already exists')
                return
            if (patch or subresource) and obj == current:
                stored = current  # a write that changes nothing is no new version
            else:
                stored = store.write(group, plural, ns, name, obj)
            owners = {r.get("uid") for r in stored["metadata"].get("ownerReferences") or []}
            if owners and not any(o["metadata"].get("uid") in owners for o in store.objects.values()):
                # Every owner is gone: the garbage collector deletes it (after the answer, in
                # the real one; here at once, as a DELETED event after the ADDED).
                store.write(group, plural, ns, name, None)
        self.send_json(201 if create else 200, self.complete(stored, group, version, plural))

    def do_DELETE(self):
        routed = self.authorized_route()
        if routed is None:
            return
        group, version, plural, namespace, name, _ = routed
        if not self.allowed("delete", group, plural):
            return
        _, namespaced = RESOURCES[(group, version, plural)]
        gone = self.server.store.write(group, plural, (namespace or "default") if namespaced else "", name, None)
        if gone is None:
            self.status(404, "NotFound", f'{plural} "{name}" not found')
        else:
            self.collect_garbage(gone["metadata"].get("uid"))
            self.send_json(200, self.complete(gone, group, version, plural))

    def collect_garbage(self, uid):
        """The garbage collector's part the agent relies on: objects owned (ownerReferences)
        by a deleted object are deleted too (background propagation, at once)."""
        store = self.server.store
        with store.lock:
            owned = [k for k, o in store.objects.items()
                     if uid and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]
        for key in owned:
            gone = store.write(*key, None)
            if gone is not None:
                self.collect_garbage(gone["metadata"].get("uid"))


def merge_patch(target, patch):
    """RFC 7386: objects merge member by member, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def make_certificates(directory, host):
    """A CA and a server certificate for `host` (IP SANs 127.0.0.1 and host), with openssl."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca_crt = f"{directory}/ca.key", f"{directory}/ca.crt"
    key, csr, crt, ext = (f"{directory}/server.{s}" for s in ("key", "csr", "crt", "ext"))
    if not os.path.exists(ca_crt):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key, "-out", ca_crt,
            "-days", "2", "-subj", "/CN=junction-standin-ca")
    if not os.path.exists(crt):
        sans = ["IP:127.0.0.1", "DNS:localhost"]
        if host not in ("127.0.0.1", "localhost", "0.0.0.0"):
            sans.append(("IP:" if host.replace(".", "").isdigit() else "DNS:") + host)
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(sans) + "\nextendedKeyUsage=serverAuth\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=junction-standin-apiserver")
        run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


def main():
    parser = argparse.ArgumentParser(description="A stand-in Kubernetes API server for tests (not the product).")
    parser.add_argument("--dir", required=True, help="where ca.crt, token, kubeconfig (and the keys) go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-file", help="accepted bearer tokens, one a line, read per request (default DIR/tokens)")
    parser.add_argument("--state", help="a JSON file keeping objects and history across restarts")
    parser.add_argument("--window", type=int, default=1000, help="events kept before compaction")
    parser.add_argument("--bookmark-interval", type=float, default=5.0)
    parser.add_argument("--forbid", action="append", default=[], help="VERB:RESOURCE answered 403, e.g. watch:endpointslices.discovery.k8s.io")
    parser.add_argument("--without", action="append", default=[], help="a CRD left uninstalled (404), e.g. ciliumlocalredirectpolicies.cilium.io")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    # A parent (a test runner) may have blocked signals in the mask it passed on: SIGTERM must
    # stop this server.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(signal.Signals))

    os.makedirs(args.dir, exist_ok=True)
    ca_crt, crt, key = make_certificates(args.dir, args.host)
    token_file = args.token_file or f"{args.dir}/tokens"
    if not os.path.exists(token_file):
        with open(token_file, "w") as f:
            f.write(uuid.uuid4().hex + "\n")
    with open(token_file) as f:
        token = f.readline().strip()
    with open(f"{args.dir}/token", "w") as f:
        f.write(token)  # no newline: some clients send the file as it is

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.store = Store(args.window, args.state)
    server.token_file = token_file
    server.bookmark_interval = args.bookmark_interval
    server.forbid = {tuple(f.split(":", 1)) for f in args.forbid}
    server.without = set(args.without)
    server.verbose = args.verbose
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    url = f"https://{args.host}:{port}"
    with open(f"{args.dir}/kubeconfig", "w") as f:
        f.write(
            "apiVersion: v1\nkind: Config\ncurrent-context: standin\n"
            f"clusters:\n- name: standin\n  cluster:\n    server: {url}\n    certificate-authority: {ca_crt}\n"
            f"users:\n- name: agent\n  user:\n    tokenFile: {args.dir}/token\n"
            "contexts:\n- name: standin\n  context: {cluster: standin, user: agent}\n")
    print(f"listening {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
