#!/usr/bin/env python3
"""Drives a skiff server with Python's official `kubernetes` client.

Run with KUBECONFIG pointing at the server's admin kubeconfig. Lists
namespaces, creates and reads a configmap, and watches it change. Prints
"python kubernetes client: ok" and exits 0 on success; any failure raises.
"""

import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main():
    config.load_kube_config()
    core = client.CoreV1Api()

    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert "default" in names, f"namespace default missing from {names}"

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="settings", labels={"app": "py"}),
        data={"colour": "blue"},
    )
    created = core.create_namespaced_config_map("py", body)
    assert created.metadata.uid, "created configmap has no uid"
    assert created.metadata.resource_version, "created configmap has no resourceVersion"

    read = core.read_namespaced_config_map("settings", "py")
    assert read.data == {"colour": "blue"}, read.data

    try:
        core.create_namespaced_config_map("py", body)
        raise AssertionError("second create did not fail")
    except ApiException as e:
        assert e.status == 409, e.status

    try:
        core.read_namespaced_config_map("missing", "py")
        raise AssertionError("read of a missing configmap did not fail")
    except ApiException as e:
        assert e.status == 404, e.status

    listed = core.list_namespaced_config_map("py", label_selector="app=py")
    assert [c.metadata.name for c in listed.items] == ["settings"], listed.items
    start = listed.metadata.resource_version

    def change():
        time.sleep(0.5)
        core.patch_namespaced_config_map("settings", "py", {"data": {"colour": "green"}})

    threading.Thread(target=change, daemon=True).start()
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map, "py", resource_version=start, timeout_seconds=20
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "MODIFIED" and event["object"].data.get("colour") == "green":
            w.stop()
            break
    else:
        raise AssertionError(f"watch ended without the change; saw {seen}")

    apps = client.AppsV1Api()
    deploy = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="busybox:1.36")]),
            ),
        ),
    )
    made = apps.create_namespaced_deployment("py", deploy)
    assert made.spec.strategy.type == "RollingUpdate", made.spec.strategy

    core.delete_namespaced_config_map("settings", "py")
    print("python kubernetes client: ok")


if __name__ == "__main__":
    main()
