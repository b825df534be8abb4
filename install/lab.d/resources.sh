# `lab apply -f`, `lab delete -f`: the objects go to the lab's stand-in API server, which
# every agent follows; the derived objects (v1/Pods and the EndpointSlices of selector
# Services, see derive.py) are kept in step with the lab's pods and Services there.

resources_change() {
  local verb="$1" file="$2"
  load_lab
  [[ "$file" == - || -f "$file" ]] || die "$verb: no file $file"
  cluster "$verb" "$file" || die "$verb failed"
}

# Writes the Pods and EndpointSlices the lab's pods make now, deletes the stale ones, and
# waits until every agent has applied them.
sync_cluster_state() {
  cluster sync || die "cannot bring the cluster's Pods and EndpointSlices up to date"
}
