#!/usr/bin/env python3
"""The whole logtide pipeline on loopback; run through scripts/demo, which sets
LOGTIDE_BIN_DIR (the logtide-files and logtide-relay binaries) and, when the services were
installed into a virtual environment, LOGTIDE_MOTO_SERVER.

Starts moto_server (Kinesis, S3, DynamoDB), noida-db (Elasticsearch) and a webhook
receiver (Slack) on free 127.0.0.1 ports, creates the stream and the bucket, lays the
bundled logs out as on a node, and runs logtide-files with examples/filebeat-seed.yml and
logtide-relay with examples/relay.yml and examples/rules/: the configurations are the
documented examples, pointed at the stand-ins by the variables they read (AWS_ENDPOINT_URL
for the AWS clients). When Elasticsearch holds every entry and the alert has arrived, both
binaries are stopped with SIGTERM (the relay then writes its last S3 object) and what
arrived is read back from each sink and printed. Exits 1 when a sink lacks an event or no
alert came.
"""
import gzip
import http.server
import importlib.resources
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ["LOGTIDE_BIN_DIR"]
STREAM = "logs"
BUCKET = "logs-archive"
INDEX = "logtide-*"
WAIT = 120


def say(text):
    print(f"demo: {text}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def cut(text, n=300):
    return text if len(text) <= n else text[:n] + " …"


class Process:
    """A process with its output in a log file; stop() sends SIGTERM and waits."""

    def __init__(self, name, argv, work, env=None, port=None):
        self.name = name
        self.log = os.path.join(work, f"{name}.log")
        cwd = os.path.join(work, name)
        os.makedirs(cwd, exist_ok=True)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        if port is not None:
            self.wait_port(port)

    def tail(self):
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-20:])

    def wait_port(self, port):
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited before listening on {port}:\n{self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.25).close()
                return
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"{self.name} did not listen on {port} within 60 s:\n{self.tail()}")
            time.sleep(0.1)

    def check_running(self):
        if self.proc.poll() is not None:
            sys.exit(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def stop(self):
        """SIGTERM, then the exit status (SIGKILL after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Webhook(http.server.ThreadingHTTPServer):
    """Slack's incoming webhook: keeps each JSON body POSTed, answers 200 "ok"."""

    def __init__(self):
        self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):
                body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                self.received.append(json.loads(body))
                handler.send_response(200)
                handler.send_header("Content-Length", "2")
                handler.end_headers()
                handler.wfile.write(b"ok")

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


def search(base, method, path, body=None):
    """One request to the search server; (status, JSON answer)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def es_count(base):
    search(base, "POST", f"/{INDEX}/_refresh")
    status, answer = search(base, "GET", f"/{INDEX}/_count")
    return answer.get("count", 0) if status == 200 else 0


def entries(path):
    """The entries of one log file, as `logtide-files parse --reassemble` reads them."""
    out = subprocess.run(
        [os.path.join(BIN, "logtide-files"), "parse", "--reassemble", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for line in out.splitlines() if "error" not in json.loads(line))


def read_stream(kinesis):
    """Every record of the stream: (partition key, data bytes)."""
    records = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=1000)
            records += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            it = page.get("NextShardIterator")
    return records


def logtide_record(data):
    """A logtide record's header and its events (a record not compressed, not a chunk)."""
    if data[:1] != b"\x1e":
        return None, [data.decode()]
    header, _, body = data[1:].partition(b"\n")
    header = json.loads(header)
    if header.get("comp") != "none" or "split" in header:
        return header, []
    return header, body.decode().splitlines()


def main():
    work = os.environ.get("LOGTIDE_DEMO") or tempfile.mkdtemp(prefix="logtide-demo-")
    keep = "LOGTIDE_DEMO" in os.environ
    os.makedirs(work, exist_ok=True)
    processes = []
    try:
        report = run(work, processes)
    finally:
        for p in reversed(processes):
            p.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    print(report["text"], flush=True)
    if report["problems"]:
        say("; ".join(report["problems"]))
        sys.exit(1)
    say(
        f"every event arrived in Kinesis, S3 and Elasticsearch ({report['expected']} of "
        f"{report['expected']}), and the alert in Slack"
    )


def run(work, processes):
    moto_port, es_port = free_port(), free_port()
    moto = os.environ.get("LOGTIDE_MOTO_SERVER") or shutil.which("moto_server")
    if not moto:
        sys.exit("moto_server is not installed (scripts/demo installs it)")
    say(f"moto_server (Kinesis, S3, DynamoDB) on 127.0.0.1:{moto_port}")
    processes.append(
        Process("moto_server", [moto, "-H", "127.0.0.1", "-p", str(moto_port)], work, port=moto_port)
    )
    noida = str(importlib.resources.files("noida_db").joinpath("noida-db"))
    say(f"noida-db (Elasticsearch) on 127.0.0.1:{es_port}")
    processes.append(
        Process(
            "noida-db",
            [noida, "start", "--host", "127.0.0.1", "--only", "elasticsearch",
             "--elasticsearch-port", str(es_port), "--data-dir", "data"],
            work,
            port=es_port,
        )
    )
    es = f"http://127.0.0.1:{es_port}"
    hook = Webhook()
    say(f"webhook receiver (Slack) on 127.0.0.1:{hook.port}")

    aws = {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
    }
    os.environ.update(aws)
    kinesis = boto3.client("kinesis", endpoint_url=aws["AWS_ENDPOINT_URL"])
    s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"])
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=STREAM, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )
    s3.create_bucket(Bucket=BUCKET)
    say(f"created the Kinesis stream {STREAM} and the S3 bucket {BUCKET}")

    # The bundled containers' logs, linked as kubelet links them on a node.
    node = os.path.join(work, "node")
    links = os.path.join(node, "var", "log", "containers")
    os.makedirs(links)
    expected = 0
    for name in sorted(os.listdir(os.path.join(ROOT, "examples", "logs"))):
        path = os.path.join(ROOT, "examples", "logs", name)
        if name.endswith(".log") and os.path.isfile(path):
            os.symlink(path, os.path.join(links, name))
            expected += entries(path)

    env = dict(os.environ)
    env.update(
        LOGTIDE_HOST_ROOT=node,
        LOGTIDE_KINESIS_STREAM=STREAM,
        LOGTIDE_ARCHIVE_BUCKET=BUCKET,
        LOGTIDE_LEASE_TABLE="logtide-leases",
        LOGTIDE_ELASTICSEARCH_URL=es,
        LOGTIDE_RULES=os.path.join(ROOT, "examples", "rules"),
        LOGTIDE_SLACK_WEBHOOK_URL=f"http://127.0.0.1:{hook.port}/services/demo",
        LOGTIDE_LOG="info",
    )
    files_env = dict(env, LOGTIDE_DATA=os.path.join(work, "logtide-files", "data"))
    relay_env = dict(env, LOGTIDE_DATA=os.path.join(work, "logtide-relay", "data"))
    say("logtide-files run -c examples/filebeat-seed.yml")
    files = Process(
        "logtide-files",
        [os.path.join(BIN, "logtide-files"), "run", "-c",
         os.path.join(ROOT, "examples", "filebeat-seed.yml")],
        work,
        env=files_env,
    )
    processes.append(files)
    say("logtide-relay run -c examples/relay.yml")
    relay = Process(
        "logtide-relay",
        [os.path.join(BIN, "logtide-relay"), "run", "-c",
         os.path.join(ROOT, "examples", "relay.yml")],
        work,
        env=relay_env,
    )
    processes.append(relay)

    say(f"waiting for {expected} events in Elasticsearch and an alert in Slack")
    deadline = time.time() + WAIT
    while es_count(es) < expected or not hook.received:
        files.check_running()
        relay.check_running()
        if time.time() > deadline:
            sys.exit(
                f"after {WAIT} s: {es_count(es)} of {expected} documents, "
                f"{len(hook.received)} alerts\nlogtide-files:\n{files.tail()}\n"
                f"logtide-relay:\n{relay.tail()}"
            )
        time.sleep(0.5)
    # Stopped with SIGTERM: each writes out what it holds (the relay its S3 object).
    for p in (files, relay):
        status = p.stop()
        if status != 0:
            sys.exit(f"{p.name} exited with {status}:\n{p.tail()}")
    processes.remove(files)
    processes.remove(relay)

    text, problems = [], []

    records = read_stream(kinesis)
    kinesis_events = 0
    first = None
    for key, data in records:
        header, events = logtide_record(data)
        kinesis_events += header["n"] if header and "split" not in header else len(events)
        if first is None and events:
            first = (key, header, events[0])
    text.append(f"== Kinesis, stream {STREAM}: {len(records)} records, {kinesis_events} events")
    if first:
        key, header, event = first
        text.append(f"   one record read back: partition key {key}, header {compact(header)}, first event:")
        text.append(f"   {cut(event)}")

    objects = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    s3_events, first_line = 0, None
    for o in objects:
        body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())
        lines = body.decode().splitlines()
        s3_events += len(lines)
        first_line = first_line or (o["Key"], lines[0] if lines else "")
    text.append(f"== S3, bucket {BUCKET}: {len(objects)} objects, {s3_events} events")
    if first_line:
        text.append(f"   one object read back: {first_line[0]} (gzip NDJSON), first event:")
        text.append(f"   {cut(first_line[1])}")

    es_docs = es_count(es)
    text.append(f"== Elasticsearch, index {INDEX}: {es_docs} documents")
    status, answer = search(es, "GET", f"/{INDEX}/_search?size=1")
    hits = answer.get("hits", {}).get("hits", []) if status == 200 else []
    if hits:
        text.append(f"   one document read back: {hits[0]['_index']}/{hits[0]['_id']}:")
        text.append(f"   {cut(compact(hits[0]['_source']))}")

    text.append(f"== Slack, webhook receiver: {len(hook.received)} alerts")
    for alert in hook.received[:1]:
        text.append(f"   {cut(compact(alert), 600)}")

    for name, n in (("Kinesis", kinesis_events), ("S3", s3_events), ("Elasticsearch", es_docs)):
        if n != expected:
            problems.append(f"{name} holds {n} events, not {expected}")
    if not hook.received:
        problems.append("no alert arrived")
    return {"text": "\n".join(text), "problems": problems, "expected": expected}


if __name__ == "__main__":
    main()
