#!/usr/bin/env python3
"""Checks the stand-in API server with the official Python `kubernetes` client: it must list
(also in pages, with selectors) and watch through it and see the same events. Usage:
check_python_client.py DIR (the stand-in's --dir, with its kubeconfig). Exit 0 when all hold."""

import sys
import threading

from kubernetes import client, config, watch


def main(directory):
    config.load_kube_config(config_file=f"{directory}/kubeconfig")
    core = client.CoreV1Api()
    discovery = client.DiscoveryV1Api()

    def service(name, port, labels=None):
        return client.V1Service(
            metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
            spec=client.V1ServiceSpec(cluster_ip="10.96.0.%d" % port, ports=[client.V1ServicePort(port=port)]))

    for i in range(1, 6):
        core.create_namespaced_service("default", service(f"py-{i}", i))
    core.create_namespaced_service("default", service("py-headless", 99, {"service.kubernetes.io/headless": ""}))

    listed = core.list_service_for_all_namespaces()
    names = sorted(s.metadata.name for s in listed.items)
    assert names == ["py-1", "py-2", "py-3", "py-4", "py-5", "py-headless"], names
    assert listed.metadata.resource_version, "a list has a resourceVersion"

    selected = core.list_service_for_all_namespaces(
        label_selector="!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name")
    assert sorted(s.metadata.name for s in selected.items) == ["py-1", "py-2", "py-3", "py-4", "py-5"]

    pages, token = [], None
    while True:
        page = core.list_service_for_all_namespaces(limit=2, _continue=token)
        pages.append([s.metadata.name for s in page.items])
        token = page.metadata._continue
        if not token:
            break
    assert len(pages) == 3 and sum(len(p) for p in pages) == 6, pages

    events = []
    start = listed.metadata.resource_version
    done = threading.Event()

    def follow():
        w = watch.Watch()
        for event in w.stream(core.list_service_for_all_namespaces, resource_version=start,
                              timeout_seconds=10, allow_watch_bookmarks=True):
            if event["type"] == "BOOKMARK":
                continue
            events.append((event["type"], event["object"].metadata.name))
            if len(events) == 3:
                w.stop()
        done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    core.create_namespaced_service("default", service("py-new", 50))
    changed = core.read_namespaced_service("py-1", "default")
    changed.spec.ports[0].port = 8080
    core.replace_namespaced_service("py-1", "default", changed)
    core.delete_namespaced_service("py-2", "default")
    done.wait(15)
    assert events == [("ADDED", "py-new"), ("MODIFIED", "py-1"), ("DELETED", "py-2")], events

    slice_list = discovery.list_endpoint_slice_for_all_namespaces()
    assert slice_list.items == [], slice_list
    print("python kubernetes client: list, pages, selectors and watch agree")


if __name__ == "__main__":
    main(sys.argv[1])
