"""A Kubernetes API mock (kmock's emulator) on 127.0.0.1 for logtide-k8s-meta's tests.

Usage: python3 kmock_server.py OBJECTS.json PORT

Loads the objects (a JSON list of Kubernetes objects, each with apiVersion, kind and
metadata), serves them on 127.0.0.1:PORT, prints `PORT <n>` on stdout once listening,
and runs until it is killed. Objects created, patched or deleted through the
API are broadcast to watches. kmock ignores label and field selectors.
"""

import asyncio
import json
import sys

import kmock

PLURALS = {
    "Pod": "pods",
    "Namespace": "namespaces",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
    "Deployment": "deployments",
}


async def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        objects = json.load(f)
    port = int(sys.argv[2])
    async with kmock.KubernetesEmulator() as handler, kmock.Server(handler, host="127.0.0.1", port=port) as server:
        for obj in objects:
            group_version = obj["apiVersion"]
            resource = f"{group_version}/{PLURALS[obj['kind']]}"
            meta = obj["metadata"]
            handler.objects[resource, meta.get("namespace"), meta["name"]] = obj
        print(f"PORT {server.port}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
