#!/usr/bin/env bash
# The L7 path's cost (issue 14), on one machine, as root, after `swift build` and
# install/build-bpf.sh (install/deps.sh bench installs Envoy, nginx-light and wrk):
#   - requests/s and p50/p99 (wrk, keep-alive and a new connection per request) for
#     the seed's CiliumEnvoyConfig served by the agent's Envoy, hit on its listener directly;
#     Debian's nginx with the same routes (the /foo.* → / rewrite) in front of the same backend;
#     the backend alone (nginx answering its URI);
#   - CEC apply → new route serving, p50/p99 over N changes (junctionctl apply, then curl
#     until the new rewrite answers).
# The path through the datapath redirect: bench/envoy-redirect.sh (see also
# Tests/IntegrationTests/EnvoyDatapathTests).
#
#   bench/envoy.sh [SECONDS] [CHANGES]      defaults: 10, 20
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-10}"
changes="${2:-20}"
envoy="${JUNCTION_ENVOY:-/usr/local/lib/junction/envoy/envoy}"
bin="$repo/.build/debug"
work="$(mktemp -d /tmp/junction-bench-envoy.XXXXXX)"
backend=18301 reference=18302
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  umount "$work/bpf" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The backend and the reference proxy: nginx, one worker each (Envoy gets --concurrency of
# the machine's cores by default; the table states it).
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$backend; keepalive 64; }
  server { listen 127.0.0.1:$backend; location / { return 200 "\$uri\n"; } }
  server {
    listen 127.0.0.1:$reference;
    location / {
      rewrite ^/foo.*\$ / break;
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -c "$work/nginx.conf" -g "daemon off;" &
pids+=($!)

"$bin/junction-agent" --node-name bench --socket "$work/run/agent.sock" --state-dir "$work/state" \
  --bpf-fs "$work/bpf" --bpf-objects "$repo/.build/bpf" --envoy "$envoy" --log-level warning \
  2>"$work/agent.log" &
pids+=($!)
ctl() { "$bin/junctionctl" --socket "$work/run/agent.sock" "$@"; }
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done

services() {
  for name in echo-same-node echo-other-node; do
    cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: cilium-test}
spec:
  clusterIP: 10.96.250.$([[ $name == echo-same-node ]] && echo 1 || echo 2)
  ports: [{name: http, port: 8080, targetPort: $backend}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-1, namespace: cilium-test, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: http, port: $backend, protocol: TCP}]
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
---
YAML
  done
}
# The seed's CEC (install/lab-examples/service-mesh), the substitution varied.
cec() {
  sed "s|substitution: \"/\"|substitution: \"$1\"|" "$repo/install/lab-examples/service-mesh/envoy-lb-listener.yaml"
}
{ services; cec /; } | ctl apply -f - >/dev/null
port=""
for _ in $(seq 100); do
  port="$(ctl envoy list -o json | python3 -c 'import json,sys; c=json.load(sys.stdin)["configs"]; print(list(c[0]["listeners"].values())[0] if c and c[0]["accepted"] else "")' 2>/dev/null || true)"
  [[ -n "$port" ]] && curl -sf "http://127.0.0.1:$port/foo" >/dev/null 2>&1 && break
  sleep 0.1
done
[[ -n "$port" ]] || { echo "envoy did not serve"; cat "$work/agent.log"; exit 1; }

run_wrk() { # name url [header]
  local extra=()
  [[ -n "${3:-}" ]] && extra=(-H "$3")
  local out
  out="$(wrk -t2 -c32 -d"${seconds}s" --latency "${extra[@]}" "$2")"
  local rps p50 p99 errors
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd ';' - || true)"
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${errors:-none}"
}
echo "| path | requests/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
for mode in keepalive close; do
  header=""
  [[ $mode == close ]] && header="Connection: close"
  run_wrk "Envoy CEC listener, $mode" "http://127.0.0.1:$port/foo" "$header"
  run_wrk "nginx same routes, $mode" "http://127.0.0.1:$reference/foo" "$header"
  run_wrk "backend direct, $mode" "http://127.0.0.1:$backend/" "$header"
done

# Apply → serving: the rewrite's target changes; time until /foo answers with it.
latencies=()
for i in $(seq "$changes"); do
  start=$(date +%s%N)
  cec "/v$i" | ctl apply -f - >/dev/null
  until [[ "$(curl -s "http://127.0.0.1:$port/foo")" == "/v$i" ]]; do sleep 0.005; done
  latencies+=($(( ($(date +%s%N) - start) / 1000000 )))
done
printf '%s\n' "${latencies[@]}" | sort -n | awk '{a[NR]=$1} END {
  p50=a[int((NR+1)/2)]; i99=int(NR*0.99+0.999); if (i99<1) i99=1; if (i99>NR) i99=NR;
  printf "\napply → route serving over %d changes: p50 %d ms, p99 %d ms, max %d ms\n", NR, p50, a[i99], a[NR] }'
