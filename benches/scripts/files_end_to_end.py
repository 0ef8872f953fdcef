#!/usr/bin/env python3
"""End-to-end benchmark of `logtide-files run` on generated container logs.

Runs the release binary on a directory of logs (from ../shared/bench/gen_cri.py) with
output.file, waits until every message of the generator's manifest has been written,
stops the agent with SIGTERM and reports, from the kernel's accounting of the child:
events per CPU-second (user + system), wall time and peak RSS. With --small-files N it
instead writes N small log files and reports RSS and the most descriptors open at once.

    cargo build --release -p logtide-files
    python3 ../shared/bench/gen_cri.py --out /tmp/bench-1g --size 1G --files 8
    python3 benches/scripts/files_end_to_end.py --logs /tmp/bench-1g
    python3 benches/scripts/files_end_to_end.py --small-files 1000
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LineCounter:
    """Counts the lines of a growing file, reading only what was added since last time
    (re-reading a large output file would compete with the process being measured)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    self.lines += chunk.count(b"\n")
                    self.offset += len(chunk)
        except FileNotFoundError:
            pass
        return self.lines


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


# The processors of examples/filebeat-seed.yml. Outside a cluster add_kubernetes_metadata
# gives the fields the path names (pod, namespace, container, container id).
SEED_PROCESSORS = """processors:
  - add_kubernetes_metadata:
      in_cluster: true
  - decode_json_fields:
      fields: ["message"]
      process_array: false
      max_depth: 5
      target: "message-json"
      overwrite_keys: true
  - drop_fields:
      when:
        has_fields: ["message-json"]
      fields: ["message"]
"""


def kubelet_links(logs, work):
    """A `containers/` directory of symlinks to the workload's files, named as kubelet
    names them, so that add_kubernetes_metadata finds pod, namespace, container and
    container id in each path (as it does in /var/log/containers)."""
    links = os.path.join(work, "containers")
    os.makedirs(links)
    for name in sorted(os.listdir(logs)):
        if name.endswith(".log"):
            os.symlink(os.path.join(logs, name), os.path.join(links, name))
    return links


def run(logs, expected, work, harvester_limit, binary, seed=False):
    out = os.path.join(work, "out")
    config = os.path.join(work, "bench.yml")
    if seed:
        logs = kubelet_links(logs, work)
    with open(config, "w") as f:
        f.write(
            "inputs:\n"
            f"  - type: container\n    paths: ['{logs}/*.log']\n    harvester_limit: {harvester_limit}\n"
            f"registry: {{path: {work}/registry, flush: 1s}}\n"
            f"output.file: {{path: {out}, filename: events.ndjson, rotate_every_kb: 100000000}}\n"
        )
        if seed:
            f.write(SEED_PROCESSORS)
    start = time.monotonic()
    proc = subprocess.Popen([binary, "run", "-c", config], env={**os.environ, "LOGTIDE_LOG": "warn"})
    max_fds = 0
    out_file = os.path.join(out, "events.ndjson")
    counter = LineCounter(out_file)
    while True:
        time.sleep(0.5)
        max_fds = max(max_fds, open_fds(proc.pid))
        if counter.count() >= expected:
            break
        if proc.poll() is not None:
            sys.exit(f"logtide-files exited early with {proc.returncode}")
    wall = time.monotonic() - start
    proc.send_signal(signal.SIGTERM)
    code = proc.wait()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    written = counter.count()
    return {
        "exit": code,
        "events": written,
        "expected": expected,
        "wall_s": round(wall, 2),
        "user_s": round(usage.ru_utime, 2),
        "sys_s": round(usage.ru_stime, 2),
        "events_per_cpu_s": round(written / cpu) if cpu else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "max_open_fds": max_fds,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logs", help="directory written by gen_cri.py")
    ap.add_argument("--small-files", type=int, help="write this many small files instead")
    ap.add_argument("--harvester-limit", type=int, default=1024)
    ap.add_argument("--seed", action="store_true", help="with the seed's processors (examples/filebeat-seed.yml; Kubernetes fields from the path)")
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "logtide-files"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        if args.small_files:
            logs = os.path.join(work, "logs")
            os.makedirs(logs)
            for i in range(args.small_files):
                with open(os.path.join(logs, f"pod{i}_ns_app-{i:064x}.log"), "w") as f:
                    for j in range(20):
                        f.write(f"2024-01-01T00:00:00.{j:09d}Z stdout F small file {i} line {j}\n")
            expected = args.small_files * 20
        else:
            logs = os.path.abspath(args.logs)
            with open(os.path.join(logs, "manifest.json")) as f:
                manifest = json.load(f)
            expected = sum(v["messages"] for v in manifest["files"].values())
        result = run(logs, expected, work, args.harvester_limit, args.binary, args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
