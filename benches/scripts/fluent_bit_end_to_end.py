#!/usr/bin/env python3
"""End-to-end benchmark of Fluent Bit on generated container logs, to compare with logtide.

Runs a Fluent Bit binary on a directory of logs (from ../shared/bench/gen_cri.py) doing
the job of logtide's seed chain (files_end_to_end.py --seed): a `tail` input over a
`containers/` directory of kubelet-named symlinks to the workload, read from the head,
CRI partial lines joined by the built-in `cri` multiline parser; Kubernetes fields
(pod, namespace, container, container id) taken from the path and JSON messages decoded
into the nested key `message-json` with the original text dropped (the `kubernetes`
filter with Use_Tag_For_Meta, which needs no cluster); and a `file` output writing one
JSON record per line. It waits until every message of the generator's manifest has been
written, stops Fluent Bit with SIGTERM and reports, from the kernel's accounting of the
child: events per CPU-second (user + system), wall time and peak RSS.

With --filter parser the `kubernetes` filter is replaced by a `parser` filter (json,
Reserve_Data On, Preserve_Key On): no Kubernetes fields, and the decoded fields are
merged at the top level of the record next to the kept text instead of nested.

With --logtide it then runs files_end_to_end.py --seed on the same logs with that
logtide-files binary and prints both results and the ratio of events per CPU-second.
Without a Fluent Bit binary (--fluent-bit or $FLUENT_BIT) it says so and exits 0.

    python3 ../shared/bench/gen_cri.py --out /tmp/bench-1g --size 1G --files 8
    python3 benches/scripts/fluent_bit_end_to_end.py --fluent-bit /path/to/fluent-bit --logs /tmp/bench-1g
    cargo build --release -p logtide-files
    python3 benches/scripts/fluent_bit_end_to_end.py --fluent-bit /path/to/fluent-bit \\
        --logs /tmp/bench-1g --logtide target/release/logtide-files
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # importing files_end_to_end leaves no __pycache__
from files_end_to_end import LineCounter, kubelet_links, open_fds  # noqa: E402

# The key logtide's seed chain decodes JSON messages into (examples/filebeat-seed.yml).
NESTED_KEY = "message-json"


def fluent_bit_config(work, links, filter_kind, mem_buf_limit, out):
    """Writes fluent-bit.conf and parsers.conf into `work`; returns the config's path."""
    parsers = os.path.join(work, "parsers.conf")
    with open(parsers, "w") as f:
        f.write("[PARSER]\n    Name   bench_json\n    Format json\n")
    # tail's `Tag kube.*` becomes kube.<path with '/' as '.'>; the filter's prefix is
    # that of the links directory, the rest (the file name) is what it parses.
    tag_prefix = "kube." + links.strip("/").replace("/", ".") + "."
    if filter_kind == "kubernetes":
        filt = (
            "[FILTER]\n"
            "    Name             kubernetes\n"
            "    Match            kube.*\n"
            f"    Kube_Tag_Prefix  {tag_prefix}\n"
            "    Use_Tag_For_Meta On\n"
            "    Labels           Off\n"
            "    Annotations      Off\n"
            "    Merge_Log        On\n"
            f"    Merge_Log_Key    {NESTED_KEY}\n"
            "    Keep_Log         Off\n"
        )
    else:
        filt = (
            "[FILTER]\n"
            "    Name         parser\n"
            "    Match        kube.*\n"
            "    Key_Name     log\n"
            "    Parser       bench_json\n"
            "    Reserve_Data On\n"
            "    Preserve_Key On\n"
        )
    config = os.path.join(work, "fluent-bit.conf")
    with open(config, "w") as f:
        f.write(
            "[SERVICE]\n"
            "    Flush        1\n"
            "    Grace        1\n"
            "    Log_Level    warn\n"
            "    HTTP_Server  Off\n"
            f"    Parsers_File {parsers}\n"
            "\n"
            "[INPUT]\n"
            "    Name              tail\n"
            "    Tag               kube.*\n"
            f"    Path              {links}/*.log\n"
            "    Read_from_Head    On\n"
            "    multiline.parser  cri\n"
            "    Buffer_Chunk_Size 1MB\n"
            "    Buffer_Max_Size   16MB\n"
            "    Skip_Long_Lines   Off\n"
            f"    Mem_Buf_Limit     {mem_buf_limit}\n"
            "\n"
            f"{filt}"
            "\n"
            "[OUTPUT]\n"
            "    Name   file\n"
            "    Match  *\n"
            f"    Path   {out}\n"
            "    File   events.ndjson\n"
            "    Format plain\n"
            "    Mkdir  On\n"
        )
    return config


def fluent_bit_version(binary):
    try:
        res = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    lines = (res.stdout or res.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def tail_of(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def check_output(path):
    """After the run: how many output lines are JSON records, how many carry the nested
    key, how many still have the text (`log`), and how many a leftover partial flag."""
    stats = {"records": 0, "invalid_json": 0, "nested": 0, "with_log": 0, "partial_p": 0}
    with open(path, "rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                stats["invalid_json"] += 1
                continue
            stats["records"] += 1
            if isinstance(rec.get(NESTED_KEY), dict):
                stats["nested"] += 1
            if "log" in rec:
                stats["with_log"] += 1
            if rec.get("_p") == "P":
                stats["partial_p"] += 1
    return stats


def run(binary, logs, expected, work, filter_kind, mem_buf_limit, timeout, settle):
    out = os.path.join(work, "out")
    links = kubelet_links(logs, work)
    config = fluent_bit_config(work, links, filter_kind, mem_buf_limit, out)
    log_path = os.path.join(work, "fluent-bit.log")
    # `--version` ran as a child too: count only what this run adds to the children's CPU.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "-c", config], stdout=log, stderr=subprocess.STDOUT)
    max_fds = 0
    out_file = os.path.join(out, "events.ndjson")
    counter = LineCounter(out_file)
    timed_out = False
    while True:
        time.sleep(0.5)
        max_fds = max(max_fds, open_fds(proc.pid))
        if counter.count() >= expected:
            break
        if proc.poll() is not None:
            sys.exit(f"fluent-bit exited early with {proc.returncode}:\n{tail_of(log_path)}")
        if time.monotonic() - start > timeout:
            timed_out = True
            break
    wall = time.monotonic() - start
    seen = counter.lines
    # Give a record split in two (or a duplicate) the time of one more flush to show up.
    time.sleep(settle)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = usage.ru_utime - before.ru_utime
    sys_ = usage.ru_stime - before.ru_stime
    cpu = user + sys_
    written = counter.count()
    result = {
        "system": "fluent-bit",
        "version": None,
        "filter": filter_kind,
        "exit": code,
        "events": written,
        "expected": expected,
        "wall_s": round(wall, 2),
        "user_s": round(user, 2),
        "sys_s": round(sys_, 2),
        "events_per_cpu_s": round(written / cpu) if cpu else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "max_open_fds": max_fds,
    }
    if timed_out:
        result["timed_out"] = True
        result["events_at_timeout"] = seen
        result["note"] = (f"timed out after {timeout}s with {seen} of {expected} lines written "
                          f"({written} after SIGTERM flushed what Fluent Bit held)")
    if written != expected:
        result["fluent_bit_log_tail"] = tail_of(log_path, 10)
    return result, out_file


def run_logtide(binary, logs):
    cmd = [sys.executable, os.path.join(HERE, "files_end_to_end.py"), "--seed", "--logs", logs, "--binary", binary]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        return {"system": "logtide", "error": f"files_end_to_end.py exited with {res.returncode}"}
    result = json.loads(lines[-1])
    return {"system": "logtide", **result}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fluent-bit", default=os.environ.get("FLUENT_BIT"), help="Fluent Bit binary (default: $FLUENT_BIT)")
    ap.add_argument("--logs", help="directory written by gen_cri.py")
    ap.add_argument("--filter", choices=("kubernetes", "parser"), default="kubernetes",
                    help="kubernetes: Kubernetes fields from the path, JSON nested under message-json, text dropped "
                         "when decoded (the seed chain); parser: JSON merged at the top level, text kept")
    ap.add_argument("--mem-buf-limit", default="64MB", help="tail's Mem_Buf_Limit (input pauses above it)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for every message")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait after the last line before SIGTERM (not in wall_s)")
    ap.add_argument("--check", action="store_true", help="afterwards, parse the output and count decoded records")
    ap.add_argument("--logtide", help="logtide-files release binary: also run files_end_to_end.py --seed with it")
    args = ap.parse_args()

    if not args.fluent_bit:
        print("Fluent Bit comparison skipped: no binary given (--fluent-bit or FLUENT_BIT)")
        return 0
    if not (os.path.isfile(args.fluent_bit) and os.access(args.fluent_bit, os.X_OK)):
        print(f"Fluent Bit comparison skipped: {args.fluent_bit} is not an executable file")
        return 0
    if not args.logs:
        ap.error("--logs is required")

    logs = os.path.abspath(args.logs)
    with open(os.path.join(logs, "manifest.json")) as f:
        manifest = json.load(f)
    expected = sum(v["messages"] for v in manifest["files"].values())
    version = fluent_bit_version(args.fluent_bit)
    with tempfile.TemporaryDirectory() as work:
        result, out_file = run(args.fluent_bit, logs, expected, work, args.filter, args.mem_buf_limit,
                               args.timeout, args.settle)
        result["version"] = version
        if args.check and os.path.exists(out_file):
            check = check_output(out_file)
            check["expected_json_messages"] = sum(v.get("json_messages", 0) for v in manifest["files"].values())
            result["check"] = check
    print(json.dumps(result), flush=True)
    ok = result["events"] == expected and not result.get("timed_out")

    if args.logtide:
        logtide = run_logtide(os.path.abspath(args.logtide), logs)
        print(json.dumps(logtide), flush=True)
        fb, lt = result.get("events_per_cpu_s"), logtide.get("events_per_cpu_s")
        ratio = round(lt / fb, 2) if fb and lt else None
        print(json.dumps({"logtide_over_fluent_bit_events_per_cpu_s": ratio,
                          "logtide_events_per_cpu_s": lt, "fluent_bit_events_per_cpu_s": fb}))
        ok = ok and "error" not in logtide
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
