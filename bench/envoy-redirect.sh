#!/usr/bin/env bash
# The L7 path as users reach it (issue 14): the seed's CiliumEnvoyConfig through the datapath
# redirect (a pod → the Service's ClusterIP → the mark, then the kernel's socket lookup
# (bpf/proxy_lookup.c) → the node's Envoy) and the seed's
# Ingress through its LoadBalancer address (the lab's external client → the node's device →
# Envoy), each next to the same Envoy listener reached directly (no redirect), Debian's nginx
# with the same routes, and the backend pod straight. See "envoy-redirect.sh" in
# bench/README.md. Needs root, what install/lab needs, and `install/deps.sh bench` (Envoy,
# nginx-light, wrk).
#
#   sudo bash bench/envoy-redirect.sh [--write FILE] [--seconds 5] [--rounds 3] [--connections 32]
#
# Subjects are interleaved round by round; the table gives each one's median over the rounds.
# JUNCTION_PREFIX: an `install/install.sh --prefix` tree (a release agent: it parses every
# access-log line into a flow, so a debug agent would take CPU from Envoy); else .build/debug.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

write="" seconds=5 rounds=3 connections=32
value_options envoy-redirect "write seconds rounds connections" "$@"
envoy="${JUNCTION_ENVOY:-/usr/local/lib/junction/envoy/envoy}"
[[ -x "$envoy" ]] || { echo "envoy-redirect: no Envoy at $envoy (install/deps.sh bench)" >&2; exit 1; }
tmp="$(mktemp -d /tmp/junction-envoyredirect.XXXXXX)"
name="jer$$"
lab=(bash "$repo/install/lab" --name "$name")
cleanup() {
  "${lab[@]}" down >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
node=172.30.0.11 lb_ip=172.30.60.10 reference_port=18080

binaries=()
[[ -n "${JUNCTION_PREFIX:-}" ]] && binaries=(--prefix "$JUNCTION_PREFIX")
"${lab[@]}" up --nodes 1 --agent-arg "--envoy=$envoy" "${binaries[@]}" >&2
"${lab[@]}" pod add client --node node1 >&2
"${lab[@]}" pod add echo1 --node node1 --namespace cilium-test --label app=echo1 >&2
"${lab[@]}" pod add echo2 --node node1 --namespace cilium-test --label app=echo2 >&2
address() { ip -n "$name-pod-$1" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; }
echo1="$(address echo1)" echo2="$(address echo2)"

# The backends: nginx answering its URI on 8080, one worker each.
backend_conf() {
  cat >"$tmp/$1.conf" <<NGINX
worker_processes 1;
pid $tmp/$1.pid;
error_log $tmp/$1-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 0.0.0.0:8080; location / { return 200 "\$uri\n"; } }
}
NGINX
}
backend_conf echo1 && backend_conf echo2
"${lab[@]}" exec --detach echo1 -- nginx -c "$tmp/echo1.conf" -g "daemon off;" >&2
"${lab[@]}" exec --detach echo2 -- nginx -c "$tmp/echo2.conf" -g "daemon off;" >&2

# The reference a user would pick instead: nginx on the node with the CEC's routes (an even
# split over both backends, retries on 5xx and errors, the /foo.* → / rewrite) and the
# Ingress's (/foo and /bar by prefix), one worker, keep-alive upstreams.
cat >"$tmp/reference.conf" <<NGINX
worker_processes 1;
pid $tmp/reference.pid;
error_log $tmp/reference-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream split { server $echo1:8080; server $echo2:8080; keepalive 64; }
  upstream foo { server $echo1:8080; keepalive 64; }
  upstream bar { server $echo2:8080; keepalive 64; }
  server {
    listen $node:$reference_port;
    location / {
      rewrite ^/foo.*\$ / break;
      proxy_pass http://split;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_503;
      proxy_next_upstream_tries 4;
    }
  }
  server {
    listen $node:$((reference_port + 1));
    location /foo { proxy_pass http://foo; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /bar { proxy_pass http://bar; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
"${lab[@]}" exec-node --detach node1 -- nginx -c "$tmp/reference.conf" -g "daemon off;" >&2

cat >"$tmp/services.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: cilium-test}
---
apiVersion: v1
kind: Service
metadata: {name: echo-same-node, namespace: cilium-test}
spec:
  clusterIP: 10.96.80.1
  selector: {app: echo1}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo-other-node, namespace: cilium-test}
spec:
  clusterIP: 10.96.80.2
  selector: {app: echo2}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: foo-app, namespace: cilium-test}
spec:
  clusterIP: 10.96.80.3
  selector: {app: echo1}
  ports: [{port: 5678, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: bar-app, namespace: cilium-test}
spec:
  clusterIP: 10.96.80.4
  selector: {app: echo2}
  ports: [{port: 5678, targetPort: 8080}]
YAML
"${lab[@]}" apply -f "$tmp/services.yaml" >&2

# The seed's CEC and Ingress, from install/lab-examples/service-mesh;
# the Ingress in the backends' namespace (selectors are per namespace).
manifest() { cat "$repo/install/lab-examples/service-mesh/$1.yaml"; }
manifest envoy-lb-listener >"$tmp/cec.yaml"
manifest cilium-ingress | sed 's/namespace: default/namespace: cilium-test/' >"$tmp/ingress.yaml"
"${lab[@]}" apply -f "$tmp/cec.yaml" >&2
"${lab[@]}" apply -f "$tmp/ingress.yaml" >&2
# The agent creates the Ingress's LoadBalancer Service in the API server; the bench plays the
# LB provider and gives it its address (the agent copies it into the Ingress's status).
for _ in $(seq 100); do
  "${lab[@]}" get Service cilium-test/junction-ingress-cilium-ingress >/dev/null 2>&1 && break
  sleep 0.2
done
"${lab[@]}" set-status Service cilium-test/junction-ingress-cilium-ingress \
  "{\"loadBalancer\":{\"ingress\":[{\"ip\":\"$lb_ip\"}]}}" >&2
"${lab[@]}" exec-client -- ip route add "$lb_ip/32" via "$node" >&2

listener_port() { # the first listener port of the config whose name contains $1, once accepted
  "${lab[@]}" ctl node1 envoy list -o json | python3 -c '
import json, sys
for config in json.load(sys.stdin)["configs"]:
    if sys.argv[1] in config["name"] and config["accepted"] and config["listeners"]:
        print(list(config["listeners"].values())[0]); break' "$1"
}
cec_port="" ingress_port="" serving=""
for _ in $(seq 100); do
  cec_port="$(listener_port envoy-lb-listener 2>/dev/null || true)"
  ingress_port="$(listener_port cilium-ingress 2>/dev/null || true)"
  if [[ -n "$cec_port" && -n "$ingress_port" ]] &&
    "${lab[@]}" exec client -- curl -sf --max-time 2 http://10.96.80.1:8080/foo >/dev/null 2>&1 &&
    "${lab[@]}" exec-client -- curl -sf --max-time 2 "http://$lb_ip/foo" >/dev/null 2>&1; then
    serving=yes
    break
  fi
  sleep 0.3
done
[[ -n "$serving" ]] || { echo "envoy-redirect: Envoy did not serve the CEC and the Ingress" >&2; exit 1; }

# The client namespace's SYN retransmissions so far (TcpExt TCPSynRetrans): a SYN the
# redirect lost shows here (a client reusing a port whose 4-tuple is in the proxy's TIME_WAIT).
syn_retrans() {
  "${lab[@]}" "$@" -- awk '/^TcpExt:/ { if (!seen) { split($0, names); seen = 1 } else {
    split($0, values); for (i in names) if (names[i] == "TCPSynRetrans") print values[i] } }' \
    /proc/net/netstat
}

# One wrk run: label, where (pod: the client pod; external: the lab's external client), URL, mode.
measure() {
  local label="$1" where="$2" url="$3" mode="$4" extra=() out before after
  [[ "$mode" == close ]] && extra=(-H "Connection: close")
  local runner=(exec client)
  [[ "$where" == external ]] && runner=(exec-client)
  before="$(syn_retrans "${runner[@]}")"
  out="$("${lab[@]}" "${runner[@]}" -- wrk -t2 -c"$connections" -d"${seconds}s" --latency "${extra[@]}" "$url")"
  after="$(syn_retrans "${runner[@]}")"
  local rps p50 p99 errors
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd ';' - || true)"
  echo "$label|$mode|$rps|$p50|$p99|${errors:-none}|$((after - before))" >>"$tmp/results.txt"
}
: >"$tmp/results.txt"
for _ in $(seq "$rounds"); do for mode in keepalive close; do
  measure cec-redirect pod "http://10.96.80.1:8080/foo" "$mode"
  measure cec-direct pod "http://$node:$cec_port/foo" "$mode"
  measure cec-nginx pod "http://$node:$reference_port/foo" "$mode"
  measure pod-straight pod "http://$echo1:8080/" "$mode"
  measure ingress-lb external "http://$lb_ip/foo" "$mode"
  measure ingress-direct external "http://$node:$ingress_port/foo" "$mode"
  measure ingress-nginx external "http://$node:$((reference_port + 1))/foo" "$mode"
done; done
drops="$("${lab[@]}" ctl node1 bpf drops)"

python3 - "$tmp/results.txt" "$started" "$seconds" "$connections" "$header" "$drops" "$rounds" \
  "$("$envoy" --version | grep -m1 -o 'version: .*')" >"$tmp/table.md" <<'PY'
import statistics, sys
results, started, seconds, connections, header, drops, rounds, version = sys.argv[1:9]
def ms(text):  # wrk's latency: 465.00us, 8.34ms, 1.02s
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)
runs = {}
for line in open(results):
    label, mode, rps, p50, p99, errors, synretrans = line.rstrip("\n").split("|")
    runs.setdefault((label, mode), []).append((float(rps), ms(p50), ms(p99), errors.strip(), int(synretrans)))
rows = {}
for key, values in runs.items():
    errors = "; ".join(sorted({v[3] for v in values if v[3] != "none"})) or "none"
    rows[key] = (statistics.median(v[0] for v in values), f"{statistics.median(v[1] for v in values):.2f} ms",
                 f"{statistics.median(v[2] for v in values):.2f} ms", errors, sum(v[4] for v in values))
what = {
    "cec-redirect": "pod → ClusterIP 10.96.80.1:8080 → redirect → Envoy (seed CEC)",
    "cec-direct": "pod → node:listener, the same Envoy listener, no redirect",
    "cec-nginx": "pod → nginx on the node, the CEC's routes",
    "pod-straight": "pod → backend pod (floor)",
    "ingress-lb": "external client → LB IP → node device → redirect → Envoy (seed Ingress)",
    "ingress-direct": "external client → node:listener, the same Envoy listener",
    "ingress-nginx": "external client → nginx on the node, the Ingress's routes",
}
print("# L7 path through the datapath redirect (bench/envoy-redirect.sh)\n")
print(f"- date: {started}")
print(header)
print(f"- Envoy: {version} (the agent's, 2 workers); wrk -t2 -c{connections} -d{seconds}s --latency, {rounds} interleaved rounds, medians; nginx-light, one worker")
print("- keep-alive: one connection per wrk connection; close: `Connection: close`, a new connection per request")
print("- SYN retx: the client's SYN retransmissions (TcpExt TCPSynRetrans), summed over the rounds\n")
print("| path | what | mode | requests/s | p50 | p99 | errors | SYN retx | vs direct Envoy | vs nginx |")
print("|---|---|---|---:|---:|---:|---|---:|---:|---:|")
for mode in ["keepalive", "close"]:
    for group, direct, nginx in [("cec", "cec-direct", "cec-nginx"), ("ingress", "ingress-direct", "ingress-nginx")]:
        labels = [l for l in what if l.startswith(group)] + (["pod-straight"] if group == "cec" else [])
        for label in labels:
            rps, p50, p99, errors, synretrans = rows[(label, mode)]
            vs_direct = rps / rows[(direct, mode)][0]
            vs_nginx = rps / rows[(nginx, mode)][0]
            print(f"| {label} | {what[label]} | {mode} | {rps:,.0f} | {p50} | {p99} | {errors} | {synretrans} | {vs_direct:.3f} | {vs_nginx:.3f} |")
print("\nGoals (issue 14), this run:\n")
for mode in ["keepalive", "close"]:
    for path, direct in [("cec-redirect", "cec-direct"), ("ingress-lb", "ingress-direct")]:
        ratio = rows[(path, mode)][0] / rows[(direct, mode)][0]
        print(f"- {path} vs direct Envoy, {mode}: {ratio:.3f} (goal ≥ 0.95: {'met' if ratio >= 0.95 else 'not met'})")
    for path, nginx in [("cec-redirect", "cec-nginx"), ("ingress-lb", "ingress-nginx")]:
        ratio = rows[(path, mode)][0] / rows[(nginx, mode)][0]
        print(f"- {path} vs nginx, {mode}: {ratio:.3f} (goal ≥ 1: {'met' if ratio >= 1 else 'not met'})")
print("\nDrop counters after the run (`junctionctl bpf drops`):\n")
print("```\n" + drops.strip() + "\n```")
PY
cat "$tmp/table.md"
[[ -n "$write" ]] && cp "$tmp/table.md" "$write"
exit 0
