#!/usr/bin/env python3
"""End-to-end CPU of `logtide-files run` shipping generated container logs to Kinesis.

Starts moto_server on a free loopback port, creates a stream, runs the release binary on
a directory of logs (from ../shared/bench/gen_cri.py) with output.kinesis, waits until the
registry says every file was acknowledged to its end (Kinesis accepted every entry),
stops the agent with SIGTERM and reports, from the kernel's accounting of the agent
alone (moto is a separate process and not counted): CPU per event, events per
CPU-second, wall time and peak RSS. Needs moto_server and boto3 (scripts/test installs them).

    cargo build --release -p logtide-files
    python3 ../shared/bench/gen_cri.py --out /tmp/bench-256m --size 256M --files 8
    python3 benches/scripts/kinesis_end_to_end.py --logs /tmp/bench-256m
    python3 benches/scripts/kinesis_end_to_end.py --logs /tmp/bench-128m --seed --compression zstd

With --seed the agent runs the seed's processors on kubelet-named links to the files, as
files_end_to_end.py --seed does.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from files_end_to_end import SEED_PROCESSORS, kubelet_links  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"moto_server did not listen on {port}")


def agent_usage(pid):
    """CPU seconds (user + system) and peak RSS (KiB) of the agent alone, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1])
    return cpu, rss


def acknowledged(binary, config, logs):
    out = subprocess.run(
        [binary, "registry", "show", "--json", "-c", config], capture_output=True
    )
    if out.returncode != 0:
        return False
    entries = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    for name in os.listdir(logs):
        if not name.endswith(".log"):
            continue
        size = os.path.getsize(os.path.join(logs, name))
        if not any(e.get("offset") == size and name in json.dumps(e) for e in entries):
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logs", required=True, help="directory written by gen_cri.py")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--compression", default="none")
    ap.add_argument("--format", default="logtide", choices=["logtide", "json"], help="output.kinesis.format")
    ap.add_argument("--seed", action="store_true", help="with the seed's processors, on kubelet-named links")
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "logtide-files"))
    args = ap.parse_args()
    logs = os.path.abspath(args.logs)
    with open(os.path.join(logs, "manifest.json")) as f:
        manifest = json.load(f)
    expected = sum(v["messages"] for v in manifest["files"].values())
    os.environ.update(AWS_ENV)
    port = free_port()
    moto = subprocess.Popen(
        [os.environ.get("LOGTIDE_MOTO_SERVER", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        k = boto3.client("kinesis", endpoint_url=endpoint)
        k.create_stream(StreamName="bench", ShardCount=args.shards)
        k.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 0.2})
        with tempfile.TemporaryDirectory() as work:
            config = os.path.join(work, "bench.yml")
            tailed = kubelet_links(logs, work) if args.seed else logs
            with open(config, "w") as f:
                f.write(
                    "inputs:\n"
                    f"  - type: container\n    paths: ['{tailed}/*.log']\n"
                    f"registry: {{path: {work}/registry, flush: 1s}}\n"
                    "output.kinesis:\n"
                    f"  stream_name: bench\n  region: us-east-1\n  endpoint: {endpoint}\n"
                    f"  dead_letter_path: {work}/dead-letter\n  compression: {args.compression}\n"
                    f"  format: {args.format}\n"
                )
                if args.seed:
                    f.write(SEED_PROCESSORS)
            start = time.monotonic()
            proc = subprocess.Popen([args.binary, "run", "-c", config], env={**os.environ, "LOGTIDE_LOG": "warn"})
            while not acknowledged(args.binary, config, logs):
                time.sleep(1)
                if proc.poll() is not None:
                    sys.exit(f"logtide-files exited early with {proc.returncode}")
            wall = time.monotonic() - start
            cpu, rss = agent_usage(proc.pid)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait()
    finally:
        moto.kill()
        moto.wait()
    print(
        json.dumps(
            {
                "exit": code,
                "events": expected,
                "wall_s": round(wall, 2),
                "agent_cpu_s": round(cpu, 2),
                "agent_cpu_us_per_event": round(cpu * 1e6 / expected, 2),
                "events_per_cpu_s": round(expected / cpu) if cpu else None,
                "peak_rss_mb": round(rss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
