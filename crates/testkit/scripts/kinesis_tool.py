#!/usr/bin/env python3
"""Kinesis chores for logtide's tests, done with boto3 (a real client, not ours).

    kinesis_tool.py ENDPOINT create NAME SHARDS      create a stream, wait until ACTIVE
    kinesis_tool.py ENDPOINT wait NAME               wait until the stream is ACTIVE
    kinesis_tool.py ENDPOINT max-record-size NAME KIB   UpdateMaxRecordSize, wait until ACTIVE
    kinesis_tool.py ENDPOINT split NAME              SplitShard of the first open shard at the
                                                     middle of its hash key range, wait until ACTIVE;
                                                     prints the shard split
    kinesis_tool.py ENDPOINT shard-count NAME N      UpdateShardCount (UNIFORM_SCALING), wait
    kinesis_tool.py ENDPOINT read NAME               every record of every shard, oldest first,
                                                     one JSON object a line:
                                                     {"shard", "seq", "key", "data" (hex)}
    kinesis_tool.py ENDPOINT put NAME KEY HEX        PutRecord of the bytes HEX with partition key KEY

Credentials and region come from the environment (the tests set fake ones).
"""
import json
import sys
import time

import boto3


def client(endpoint):
    return boto3.client("kinesis", endpoint_url=endpoint)


def wait_active(k, name, timeout=60.0):
    deadline = time.time() + timeout
    while True:
        try:
            s = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            if s["StreamStatus"] == "ACTIVE":
                return s
        except k.exceptions.ResourceNotFoundException:
            pass
        if time.time() > deadline:
            sys.exit(f"stream {name} did not become ACTIVE within {timeout} s")
        time.sleep(0.1)


def read(k, name):
    out = sys.stdout
    shards = []
    token = None
    while True:
        args = {"NextToken": token} if token else {"StreamName": name}
        resp = k.list_shards(**args)
        shards.extend(resp["Shards"])
        token = resp.get("NextToken")
        if not token:
            break
    for shard in shards:
        sid = shard["ShardId"]
        it = k.get_shard_iterator(
            StreamName=name, ShardId=sid, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            resp = k.get_records(ShardIterator=it, Limit=1000)
            for r in resp["Records"]:
                out.write(
                    json.dumps(
                        {
                            "shard": sid,
                            "seq": r["SequenceNumber"],
                            "key": r["PartitionKey"],
                            "data": r["Data"].hex(),
                        }
                    )
                )
                out.write("\n")
            if not resp["Records"]:
                break
            it = resp.get("NextShardIterator")
    out.flush()


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    endpoint, cmd, name = argv[1], argv[2], argv[3]
    k = client(endpoint)
    if cmd == "create":
        k.create_stream(StreamName=name, ShardCount=int(argv[4]))
        wait_active(k, name)
    elif cmd == "wait":
        wait_active(k, name)
    elif cmd == "max-record-size":
        arn = wait_active(k, name)["StreamARN"]
        k.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=int(argv[4]))
        time.sleep(0.2)
        s = wait_active(k, name)
        print(json.dumps({"MaxRecordSizeInKiB": s.get("MaxRecordSizeInKiB")}))
    elif cmd == "split":
        wait_active(k, name)
        shards = k.list_shards(StreamName=name)["Shards"]
        open_ = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
        s = open_[0]
        lo = int(s["HashKeyRange"]["StartingHashKey"])
        hi = int(s["HashKeyRange"]["EndingHashKey"])
        k.split_shard(
            StreamName=name,
            ShardToSplit=s["ShardId"],
            NewStartingHashKey=str((lo + hi) // 2),
        )
        time.sleep(0.2)
        wait_active(k, name)
        print(s["ShardId"])
    elif cmd == "shard-count":
        wait_active(k, name)
        k.update_shard_count(
            StreamName=name, TargetShardCount=int(argv[4]), ScalingType="UNIFORM_SCALING"
        )
        time.sleep(0.2)
        wait_active(k, name)
    elif cmd == "read":
        read(k, name)
    elif cmd == "put":
        k.put_record(StreamName=name, PartitionKey=argv[4], Data=bytes.fromhex(argv[5]))
    else:
        sys.exit(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
