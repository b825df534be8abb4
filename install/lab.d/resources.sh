# `lab apply -f`, `lab delete -f`, and keeping the derived objects (v1/Pods and the
# EndpointSlices of selector Services, see derive.py) in step with the lab's pods.

resources_change() {
  local verb="$1" file="$2"
  load_lab
  [[ "$file" == - ]] && { file="$(lab_dir)/stdin.yaml"; cat >"$file"; }
  [[ -f "$file" ]] || die "$verb: no file $file"
  local node
  for node in $(node_names); do
    echo "== $node"
    ctl "$node" "$verb" -f "$file" || die "$verb on $node's agent failed"
  done
  sync_cluster_state
}

# Applies what the cluster should hold now and deletes what the lab made that it no
# longer should, on every agent.
sync_cluster_state() {
  local desired stale counts
  desired="$(lab_dir)/derived.json" stale="$(lab_dir)/stale.json"
  counts="$(python3 "$LAB_LIB/derive.py" "$(lab_dir)" "$LAB" "$desired" "$stale")" ||
    die "cannot derive the cluster's objects"
  read -r want gone <<<"$counts"
  ((want > 0)) && ctl_all apply "$desired"
  ((gone > 0)) && ctl_all delete "$stale"
  rm -f "$desired" "$stale"
  return 0
}
