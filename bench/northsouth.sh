#!/usr/bin/env bash
# North-south: requests per second and latency from the lab's external client to a NodePort
# whose only backend pod is on another node, through Junction in SNAT mode, Junction in DSR
# mode, and kube-proxy's iptables rules on the ingress node (the reference), side by side in
# one run; plus the same server straight at the pod's IP (no load balancer at all). Keep-alive
# and one-connection-per-request runs, wrk as the client; then bulk transfers (MB/s each way,
# bench/nsbulk.py) over the same paths. See "northsouth.sh" in bench/README.md. Needs root, wrk, gcc, curl, iptables, python3 and what install/lab needs
# (a built checkout: install/build-driver.sh, install/build-bpf.sh, swift build).
#
#   sudo bash bench/northsouth.sh [--write FILE] [--rounds 8] [--duration 5]
#        [--connections 8] [--sequential 500] [--bulk 64] [--mechanisms iptables,snat,dsr]
#        [--bin DIR]
#
# --bulk: MiB per bulk transfer (one download and one upload per path per round).
# --bin: the directory with junction, junction-agent and junctionctl (default .build/debug,
# as install/lab). Every lab the script brings up is taken down on exit, failure or Ctrl-C.
set -euo pipefail

bench="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$bench")"
. "$bench/lib.sh"

write="" rounds=8 duration=5 connections=8 sequential=500 bulk=64 mechanisms=iptables,snat,dsr bin="$repo/.build/debug"
args=("$@")
value_options northsouth "write rounds duration connections sequential bulk mechanisms bin" "$@"
for number in rounds duration connections sequential bulk; do
  [[ "${!number}" =~ ^[1-9][0-9]*$ ]] || { echo "northsouth: --$number must be a positive number" >&2; exit 2; }
done
IFS=, read -r -a mechanism_list <<<"$mechanisms"
for mech in "${mechanism_list[@]}"; do
  [[ "$mech" =~ ^(iptables|snat|dsr|hybrid)$ ]] ||
    { echo "northsouth: --mechanisms takes iptables, snat, dsr, hybrid; got '$mech'" >&2; exit 2; }
done

((EUID == 0)) || { echo "northsouth: must run as root (the lab: namespaces, bpffs)" >&2; exit 1; }
for tool in ip tc wrk gcc curl python3 iptables-legacy-restore iptables-legacy; do
  command -v "$tool" >/dev/null ||
    { echo "northsouth: $tool is missing (apt-get install wrk gcc curl python3 iptables iproute2)" >&2; exit 1; }
done
lab=("$repo/install/lab")
if [[ "$mechanisms" != iptables ]] && ! "${lab[@]}" help | grep -q -- --lb-mode; then
  echo "northsouth: install/lab has no --lb-mode here (no north-south datapath in this checkout); run with --mechanisms iptables" >&2
  exit 1
fi

# The lab's fixed addresses (install/lab.d/common.sh): node1 is the ingress node, node2
# holds the backend pod, the client is outside the cluster on the same underlay.
ingress_ip=172.30.0.11 client_ip=172.30.0.100 node_port=30080 pod_port=8080

tmp="$(mktemp -d /tmp/junction-northsouth.XXXXXX)"
labs=()
cleanup() {
  local name
  for name in "${labs[@]+"${labs[@]}"}"; do "${lab[@]}" --name "$name" down >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

header="$(machine_lines)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
gcc -O2 -Wall -o "$tmp/nshttp" "$bench/nshttp.c"

# wrk prints its own report; this adds one line the script parses (latencies in µs).
cat >"$tmp/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("northsouth requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
LUA

cat >"$tmp/service.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.80
  externalTrafficPolicy: Cluster
  selector: {app: web}
  ports:
  - {name: http, port: 80, protocol: TCP, targetPort: $pod_port, nodePort: $node_port}
YAML

# The same Service as kube-proxy's iptables mode writes it (nat: KUBE-SERVICES ->
# KUBE-NODEPORTS -> KUBE-EXT -> KUBE-SVC -> KUBE-SEP DNAT, the mark and MASQUERADE
# --random-fully in KUBE-POSTROUTING; filter: KUBE-FORWARD), for backend $1.
kube_proxy_rules() {
  local backend="$1"
  cat <<RULES
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-WEBHTTP - [0:0]
:KUBE-EXT-WEBHTTP - [0:0]
:KUBE-SEP-WEBHTTP0 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -d 10.96.0.80/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WEBHTTP
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport $node_port -j KUBE-EXT-WEBHTTP
-A KUBE-EXT-WEBHTTP -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-WEBHTTP -j KUBE-SVC-WEBHTTP
-A KUBE-SVC-WEBHTTP -m comment --comment "default/web:http -> $backend:$pod_port" -j KUBE-SEP-WEBHTTP0
-A KUBE-SEP-WEBHTTP0 -s $backend/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-WEBHTTP0 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination $backend:$pod_port
COMMIT
*filter
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -m comment --comment "kubernetes forwarding rules" -j ACCEPT
-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "kubernetes forwarding conntrack rule" -j ACCEPT
COMMIT
RULES
}

# GET $1 from the client of lab $2 until it answers (at most 15 s); prints the body.
first_answer() {
  local url="$1" name="$2" body _
  for _ in $(seq 30); do
    if body="$(ip netns exec "$name-client" curl -sS --max-time 1 "$url" 2>/dev/null)" && [[ -n "$body" ]]; then
      echo "$body"
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# tc filters and tcx programs on eth0 (both directions) of node $2 (default node1) in lab $1:
# Junction's device programs (on tcx with --tc-hook tcx or auto on 6.6+ kernels, which
# Debian 12's tc cannot list: bench/tcxprog.py reads them).
device_filters() {
  local ns="$1-${2:-node1}"
  { tc -n "$ns" filter show dev eth0 ingress; tc -n "$ns" filter show dev eth0 egress
    ip netns exec "$ns" python3 "$repo/bench/tcxprog.py" ids eth0; } 2>/dev/null |
    grep -c . || true
}

# The reference's nodes carry no Junction device program: a lab whose agents serve eth0
# (install/lab with --lb-mode attaches them on every node) has them removed, on both nodes,
# as on a cluster where kube-proxy does north-south. The pods stay Junction's (the backend's
# veth programs are the same on every path).
detach_device_programs() {
  local node direction
  for node in node1 node2; do
    for direction in ingress egress; do
      tc -n "$1-$node" filter del dev eth0 "$direction" 2>/dev/null || true
    done
    ip netns exec "$1-$node" python3 "$repo/bench/tcxprog.py" clear eth0
    (($(device_filters "$1" "$node") == 0)) ||
      { echo "northsouth: lab $1: programs left on $node's eth0 after tc filter del" >&2; exit 1; }
  done
}

# One lab per mechanism, all alive at once: 2 nodes, the backend pod on node2.
declare -A lab_name url_of client_of ingress_of expect_peer backend_of server_of
targets=()
for mech in "${mechanism_list[@]}"; do
  name="nb$$${mech:0:1}"
  [[ "$mech" == hybrid ]] && name="nb$$y"
  labs+=("$name")
  lab_name[$mech]="$name"
  echo "northsouth: lab $name ($mech)" >&2
  if [[ "$mech" == iptables ]]; then
    # Without --lb-mode given the lab's default mode; its device programs go below.
    "${lab[@]}" --name "$name" up --nodes 2 --bin "$bin" >/dev/null
  else
    "${lab[@]}" --name "$name" up --nodes 2 --bin "$bin" --lb-mode "$mech" >/dev/null
  fi
  "${lab[@]}" --name "$name" pod add web --node node2 --label app=web >/dev/null
  launched="$("${lab[@]}" --name "$name" exec --detach web -- "$tmp/nshttp" "$pod_port")"
  server_of[$mech]="${launched##* }"
  backend="$(cat "${LAB_ROOT:-/run/junction-lab}/$name/pods/web/ip")"
  backend_of[$mech]="$backend"
  if [[ "$mech" == iptables ]]; then
    detach_device_programs "$name"
    kube_proxy_rules "$backend" | ip netns exec "$name-node1" iptables-legacy-restore --noflush
    expect_peer[$mech]="$ingress_ip"
  else
    (($(device_filters "$name") > 0)) || { echo "northsouth: lab $name: no program on node1's eth0 with --lb-mode $mech" >&2; exit 1; }
    "${lab[@]}" --name "$name" apply -f "$tmp/service.yaml" >/dev/null
    # TCP: DSR in dsr and hybrid mode keeps the client's address.
    if [[ "$mech" == snat ]]; then expect_peer[$mech]="$ingress_ip"; else expect_peer[$mech]="$client_ip"; fi
  fi
  # The client closes first (see nshttp.c) and so holds TIME_WAIT: the whole port range, and
  # ports in TIME_WAIT reused for new connections (timestamps keep that safe), as in
  # connection-cost.sh's client pods. Per namespace, gone with the lab.
  ip netns exec "$name-client" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
  url_of[$mech]="http://$ingress_ip:$node_port/"
  client_of[$mech]="$name-client"
  ingress_of[$mech]="$name-node1"
  targets+=("$mech")
done

# The floor: the client straight to the pod's IP, routed by node2, no load balancer; in
# the reference's lab (or the first one).
floor_mech="${mechanism_list[0]}"
[[ -n "${lab_name[iptables]:-}" ]] && floor_mech=iptables
url_of[direct]="http://${backend_of[$floor_mech]}:$pod_port/"
client_of[direct]="${lab_name[$floor_mech]}-client"
ingress_of[direct]=""
expect_peer[direct]="$client_ip"
lab_name[direct]="${lab_name[$floor_mech]}"
targets=(direct "${targets[@]}")

# Every path must answer, and the pod must see the source it should (the ingress node's
# address through SNAT and MASQUERADE, the client's through DSR and straight).
peers=""
for target in "${targets[@]}"; do
  body="$(first_answer "${url_of[$target]}" "${lab_name[$target]}")" ||
    { echo "northsouth: ${url_of[$target]} does not answer from ${client_of[$target]} ($target)" >&2; exit 1; }
  peer="${body#peer }"
  peer="${peer%:*}"
  [[ "$peer" == "${expect_peer[$target]}" ]] ||
    { echo "northsouth: $target: the pod saw $peer, expected ${expect_peer[$target]}" >&2; exit 1; }
  peers+="$target=$peer "
done

# rx + tx packets of the ingress node's eth0.
ingress_packets() {
  [[ -n "$1" ]] || { echo 0; return; }
  ip netns exec "$1" cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth0/statistics/tx_packets |
    awk '{s += $1} END {print s}'
}

# The client's TcpExt SYN retransmits (a SYN lost anywhere on the path costs its connection
# a 1 s timeout, which wrk's latency does not show): namespace $1.
syn_retransmits() {
  ip netns exec "$1" awk '/^TcpExt:/ { if (!names) { names = $0 } else { split(names, n); for (i = 2; i <= NF; i++) if (n[i] == "TCPSynRetrans") print $i; names = "" } }' /proc/net/netstat
}

# One wrk run: TARGET MODE SECONDS; prints the parsed line's fields, the ingress node's
# packets and the client's SYN retransmits during it.
wrk_run() {
  local target="$1" mode="$2" seconds="$3" extra=() before after out syn_before syn_after
  [[ "$mode" == close ]] && extra=(-H "Connection: close")
  syn_before="$(syn_retransmits "${client_of[$target]}")"
  before="$(ingress_packets "${ingress_of[$target]}")"
  out="$(ip netns exec "${client_of[$target]}" wrk -t1 -c"$connections" -d"${seconds}s" --latency \
    -s "$tmp/report.lua" "${extra[@]+"${extra[@]}"}" "${url_of[$target]}")" ||
    { echo "northsouth: wrk failed for $target ($mode): $out" >&2; exit 1; }
  after="$(ingress_packets "${ingress_of[$target]}")"
  syn_after="$(syn_retransmits "${client_of[$target]}")"
  echo "$out" >>"$tmp/wrk.log"
  local line
  line="$(grep '^northsouth ' <<<"$out")" || { echo "northsouth: no result line from wrk: $out" >&2; exit 1; }
  echo "$line packets=$((after - before)) syn_retransmits=$((syn_after - syn_before))"
}

# One request at a time on a new connection each, SEQUENTIAL of them (curl, one process:
# its own connect and total times, the handshake included): TARGET ROUND, appends
# "TARGET ROUND CONNECT_S TOTAL_S" lines.
curl_run() {
  local target="$1" round="$2" _
  for _ in $(seq "$sequential"); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "${url_of[$target]}"
  done >"$tmp/curl.conf"
  ip netns exec "${client_of[$target]}" curl -sS --fail -H "Connection: close" -K "$tmp/curl.conf" \
    -w "$target $round %{time_connect} %{time_total}\n" >>"$tmp/sequential.txt" ||
    { echo "northsouth: curl failed for $target" >&2; exit 1; }
}

echo "northsouth: warm-up (1 s per path and mode, untimed)" >&2
for target in "${targets[@]}"; do
  for mode in keepalive close; do wrk_run "$target" "$mode" 1 >/dev/null; done
done

echo "northsouth: ${#targets[@]} paths x $rounds rounds: wrk ${duration} s keep-alive and close ($connections connections), $sequential sequential curl requests" >&2
: >"$tmp/samples.txt"
: >"$tmp/sequential.txt"
for round in $(seq "$rounds"); do
  # The order rotates by one every round, so drift hits every path alike.
  shift_by=$(((round - 1) % ${#targets[@]}))
  order=("${targets[@]:shift_by}" "${targets[@]:0:shift_by}")
  for mode in keepalive close; do
    for target in "${order[@]}"; do
      result="$(wrk_run "$target" "$mode" "$duration")"
      echo "$target $mode $round $result" >>"$tmp/samples.txt"
    done
  done
  for target in "${order[@]}"; do curl_run "$target" "$round"; done
  echo "northsouth: round $round/$rounds done" >&2
done

# Bulk: in every lab the pod's server becomes bench/nsbulk.py on the same port (nshttp
# stopped, by the pid the lab gave), then one download and one upload of $bulk MiB per path
# per round, the order rotating as above. "TARGET get|put ROUND SECONDS" lines.
bulk_bytes=$((bulk << 20))
for mech in "${mechanism_list[@]}"; do
  kill "${server_of[$mech]}"
  "${lab[@]}" --name "${lab_name[$mech]}" exec --detach web -- python3 "$bench/nsbulk.py" serve "$pod_port" >/dev/null
done
bulk_address() {
  if [[ "$1" == direct ]]; then echo "${backend_of[$floor_mech]} $pod_port"; else echo "$ingress_ip $node_port"; fi
}
# The new server answers (a few tries while it starts), on every path.
for target in "${targets[@]}"; do
  read -r host port <<<"$(bulk_address "$target")"
  for _ in $(seq 30); do
    ip netns exec "${client_of[$target]}" python3 "$bench/nsbulk.py" get "$host" "$port" 1 5 >/dev/null 2>&1 && break
    sleep 0.5
  done
done
echo "northsouth: bulk, ${#targets[@]} paths x $rounds rounds: $bulk MiB each way" >&2
: >"$tmp/bulk.txt"
for round in $(seq "$rounds"); do
  shift_by=$(((round - 1) % ${#targets[@]}))
  order=("${targets[@]:shift_by}" "${targets[@]:0:shift_by}")
  for target in "${order[@]}"; do
    read -r host port <<<"$(bulk_address "$target")"
    for verb in get put; do
      seconds="$(ip netns exec "${client_of[$target]}" python3 "$bench/nsbulk.py" "$verb" "$host" "$port" "$bulk_bytes" 120)" ||
        { echo "northsouth: bulk $verb failed for $target" >&2; exit 1; }
      echo "$target $verb $round $seconds" >>"$tmp/bulk.txt"
    done
  done
done

# Junction's drop counters on both nodes of each Junction lab, at the end (the checks and
# warm-up included): why a path lost packets, if it did.
drops=""
for mech in "${mechanism_list[@]}"; do
  [[ "$mech" == iptables ]] && continue
  for node in node1 node2; do
    counted="$(python3 "$bench/jncdrops.py" "${LAB_ROOT:-/run/junction-lab}/${lab_name[$mech]}/nodes/$node/bpf" \
      "$repo/bpf/junction_abi.h" | awk '{printf "%s%s %s: %s", sep, $1, $2, $3; sep = ", "}')" ||
      counted="(unreadable)"
    drops+="$mech $node: ${counted:-none}; "
  done
done

# The reference's agents did not put their programs back during the run.
if [[ -n "${lab_name[iptables]:-}" ]]; then
  for node in node1 node2; do
    (($(device_filters "${lab_name[iptables]}" "$node") == 0)) ||
      { echo "northsouth: Junction programs came back on the reference's $node during the run" >&2; exit 1; }
  done
fi

{
  echo "# North-south: external client to a NodePort, backend on another node (wrk)"
  echo
  echo "- date: $started"
  echo "$header"
  echo "- command: \`sudo bash bench/northsouth.sh ${args[*]}\`"
  echo "- binaries: \`$bin\` (junction-agent, junction, junctionctl); datapath: install/lab's BPF objects"
  echo "- tools: $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2), $(iptables-legacy --version), $(gcc --version | head -n1), server bench/nshttp.c (gcc -O2, one thread, epoll); bulk: bench/nsbulk.py, $(python3 --version)"
  echo "- source address the pod saw, checked before timing: $peers"
  [[ -n "$drops" ]] && echo "- Junction's drop counters at the end (checks and warm-up included): ${drops%; }"
  echo
  python3 "$bench/northsouth.py" --samples "$tmp/samples.txt" --sequential-samples "$tmp/sequential.txt" \
    --sequential "$sequential" --rounds "$rounds" --duration "$duration" \
    --connections "$connections" --bulk-samples "$tmp/bulk.txt" --bulk-bytes "$bulk_bytes" \
    --targets "${targets[@]}"
} >"$tmp/report.md"
cat "$tmp/report.md"
if [[ -n "$write" ]]; then cp "$tmp/report.md" "$write"; fi
