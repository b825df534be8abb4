#!/usr/bin/env python3
"""Load for bench/k8s-sync.sh (the agent following the stand-in API server).

  k8s_sync.py populate N E STATE   a stand-in --state file: N Services, each with one
                                   EndpointSlice of E ready endpoints
  k8s_sync.py churn DIR N RATE SECONDS
                                   replace EndpointSlices (one endpoint moved each time) at
                                   RATE/s for SECONDS through the stand-in in DIR, each stamped
                                   with endpoints.kubernetes.io/last-change-trigger-time = now
                                   (RFC 3339 with microseconds, as the controller writes it)
"""
import datetime
import http.client
import json
import ssl
import sys
import time
import uuid


def address(index):
    return f"10.{200 + index // 65000}.{(index // 250) % 256}.{index % 250 + 1}"


def slice_object(i, e, shift=0, trigger=None):
    meta = {"name": f"svc-{i}-abc", "namespace": "default",
            "labels": {"kubernetes.io/service-name": f"svc-{i}"}}
    if trigger:
        meta["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": trigger}
    return {"metadata": meta, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address(i * e + j + shift)], "conditions": {"ready": True}}
                          for j in range(e)]}


def populate(n, e, path):
    objects, rv = [], 1
    for i in range(n):
        rv += 1
        service = {"metadata": {"name": f"svc-{i}", "namespace": "default", "resourceVersion": str(rv),
                                "uid": str(uuid.uuid4())},
                   "spec": {"clusterIP": f"10.{96 + i // 65000}.{(i // 250) % 256}.{i % 250 + 1}",
                            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}
        objects.append({"key": ["", "services", "default", f"svc-{i}"], "object": service})
        rv += 1
        endpoints = slice_object(i, e)
        endpoints["metadata"].update(resourceVersion=str(rv), uid=str(uuid.uuid4()))
        objects.append({"key": ["discovery.k8s.io", "endpointslices", "default", f"svc-{i}-abc"],
                        "object": endpoints})
    with open(path, "w") as f:
        json.dump({"rv": rv, "oldest": 1, "events": [], "objects": objects}, f)


def churn(directory, n, e, rate, seconds):
    with open(f"{directory}/kubeconfig") as f:
        port = int([line for line in f if "server:" in line][0].rsplit(":", 1)[1])
    token = open(f"{directory}/token").read().strip()
    context = ssl.create_default_context(cafile=f"{directory}/ca.crt")
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        due = start + sent / rate
        if time.monotonic() < due:
            time.sleep(due - time.monotonic())
        i = (sent * 7919) % n
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = json.dumps(slice_object(i, e, shift=sent + 1, trigger=now))
        connection.request("PUT", f"/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/svc-{i}-abc",
                           body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        connection.getresponse().read()
        sent += 1
    print(f"churn: {sent} EndpointSlice changes in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    if sys.argv[1] == "populate":
        populate(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        churn(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
