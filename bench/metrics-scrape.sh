#!/usr/bin/env bash
# Scrape cost: one GET /metrics of a real junction-agent holding N Services (x B backends),
# for each N of --counts, and GET /v1/healthz on its API socket idle and while /metrics is
# scraped back to back (does a scrape hold the agent up?). The agent runs in a throwaway
# network namespace with its own bpffs; nothing else is touched. Needs root.
#
#   sudo bash bench/metrics-scrape.sh [--write FILE] [--counts 1000,10000] [--backends B]
#        [--scrapes K]
# The agent: $JUNCTION_AGENT_BIN, else a release build of this checkout.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

write="" counts=1000,10000 backends=10 scrapes=20
value_options metrics-scrape "write counts backends scrapes" "$@"
[[ $EUID -eq 0 ]] || { echo "metrics-scrape: needs root" >&2; exit 1; }

tmp="$(mktemp -d /tmp/junction-metrics-scrape.XXXXXX)"
prefix="jbm$$"
agent_pid=""
alive() { kill -0 "$1" 2>/dev/null; }
stop_agent() {
  # The agent, by its PID only: SIGTERM, SIGKILL after 10 s.
  if [[ -n "$agent_pid" ]] && alive "$agent_pid"; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$agent_pid" || break; sleep 0.1; done
    alive "$agent_pid" && kill -KILL "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  agent_pid=""
}
cleanup() {
  stop_agent
  ip netns del "$prefix-node" 2>/dev/null || true
  for m in "$tmp"/bpf-*; do
    [[ -d "$m" ]] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
agent_bin="${JUNCTION_AGENT_BIN:-}"
if [[ -z "$agent_bin" ]]; then
  echo "metrics-scrape: building junction-agent (release)" >&2
  (cd "$repo" && swift build -c release --product junction-agent >&2)
  agent_bin="$(cd "$repo" && swift build -c release --show-bin-path)/junction-agent"
fi
agent_bin="$(realpath "$agent_bin")"
objects="${JUNCTION_BPF_OBJECTS:-$repo/.build/bpf}"
[[ -f "$objects/endpoint.o" ]] || bash "$repo/install/build-bpf.sh" "$objects" >&2

ip netns add "$prefix-node"
ip netns exec "$prefix-node" ip link set lo up
rows=()
IFS=, read -r -a count_list <<<"$counts"
for n in "${count_list[@]}"; do
  echo "metrics-scrape: $n services" >&2
  run="$tmp/run-$n"
  mkdir -p "$run/state" "$run/sock" "$tmp/bpf-$n"
  mount -t bpf -o mode=0700 bpf "$tmp/bpf-$n"
  svc_max=$((n * (1 + backends) + 1024))
  be_max=$((n * backends + 1024))
  ip netns exec "$prefix-node" "$agent_bin" --node-name bench --socket "$run/sock/agent.sock" \
    --state-dir "$run/state" --bpf-fs "$tmp/bpf-$n" --bpf-objects "$objects" \
    --lb-services-max "$svc_max" --lb-backends-max "$be_max" \
    --prometheus-serve-addr 127.0.0.1:9962 >"$run/agent.log" 2>&1 &
  agent_pid=$!
  python3 "$bench/timer.py" agent-wait --socket "$run/sock/agent.sock" --pid "$agent_pid" \
    --timeout 30 >/dev/null || { echo "metrics-scrape: the agent did not come up:" >&2; cat "$run/agent.log" >&2; exit 1; }
  python3 "$bench/lbprog.py" gen --dir "$run/gen" --services "$n" --backends "$backends" \
    --measured 10.200.0.1 >/dev/null
  python3 "$bench/lbprog.py" apply --socket "$run/sock/agent.sock" --file "$run/gen/objects.yaml" >/dev/null
  ip netns exec "$prefix-node" python3 "$bench/metrics_scrape.py" --metrics 127.0.0.1:9962 \
    --socket "$run/sock/agent.sock" --pid "$agent_pid" --scrapes "$scrapes" >"$run/result.json"
  rows+=("$n $run/result.json")
  stop_agent
done

report="$(
  echo "# Metrics scrape cost: GET /metrics of junction-agent at $counts Services"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/metrics-scrape.sh${write:+ --write $write} --counts $counts --backends $backends --scrapes $scrapes\`"
  echo "- agent: \`$agent_bin\`; each Service has $backends backends; the conntrack map is empty (no traffic), so"
  echo "  the walk of jnc_ct4 costs nothing here: a scrape costs O(connections) on top of this"
  echo
  python3 - "${rows[@]}" <<'EOF'
import json, sys
rows = [(int(a.split()[0]), json.load(open(a.split()[1]))) for a in sys.argv[1:]]
print("| Services | first scrape ms (recounts) | scrape median ms | scrape p99 ms | agent CPU ms / scrape | body bytes | healthz median ms idle → scraping | healthz p99 ms idle → scraping |")
print("|---|---|---|---|---|---|---|---|")
for n, r in rows:
    s, i, b = r["scrape_ms"], r["healthz_idle_ms"], r["healthz_scraping_ms"]
    print(f"| {n:,} | {r['first_scrape_ms']:.2f} | {s['median']:.2f} | {s['p99']:.2f} | {r['cpu_ms_per_scrape']:.2f} | {r['bytes']:,} "
          f"| {i['median']:.2f} → {b['median']:.2f} | {i['p99']:.2f} → {b['p99']:.2f} |")
if len(rows) == 2:
    (n0, a), (n1, b) = rows
    print()
    print(f"Ratio {n1:,} / {n0:,} Services: scrape median x{b['scrape_ms']['median'] / a['scrape_ms']['median']:.2f}, "
          f"agent CPU per scrape x{b['cpu_ms_per_scrape'] / max(a['cpu_ms_per_scrape'], 0.001):.2f}.")
EOF
)"
echo "$report"
[[ -z "$write" ]] || echo "$report" >"$write"
