#!/usr/bin/env python3
"""S3 and DynamoDB chores for logtide's tests, done with boto3 (a real client, not ours).

    s3_tool.py ENDPOINT create-bucket BUCKET   create a bucket
    s3_tool.py ENDPOINT read BUCKET PREFIX     every object under PREFIX, gunzipped: one JSON
                                               object a line: {"key", "size", "line"} per
                                               NDJSON line of the object
    s3_tool.py ENDPOINT objects BUCKET PREFIX  every object under PREFIX as it is: one JSON object a
                                               line: {"key", "size", "body"} (the body as UTF-8 text)
    s3_tool.py ENDPOINT leases TABLE           every item of a lease table, one JSON a line
    s3_tool.py ENDPOINT iam-user USER          an IAM user allowed everything, and an access key
                                               of it: {"access_key_id", "secret_access_key"}
                                               (three IAM calls; for a moto_server that checks
                                               signatures after INITIAL_NO_AUTH_ACTION_COUNT)

Credentials and region come from the environment (the tests set fake ones).
"""
import gzip
import json
import sys

import boto3


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    endpoint, cmd, name = argv[1], argv[2], argv[3]
    out = sys.stdout
    if cmd == "create-bucket":
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    elif cmd == "read":
        s3 = boto3.client("s3", endpoint_url=endpoint)
        prefix = argv[4] if len(argv) > 4 else ""
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=name, Key=obj["Key"])["Body"].read()
                for line in gzip.decompress(body).decode("utf-8").splitlines():
                    out.write(json.dumps({"key": obj["Key"], "size": obj["Size"], "line": line}))
                    out.write("\n")
    elif cmd == "objects":
        s3 = boto3.client("s3", endpoint_url=endpoint)
        prefix = argv[4] if len(argv) > 4 else ""
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=name, Key=obj["Key"])["Body"].read()
                out.write(json.dumps({"key": obj["Key"], "size": obj["Size"], "body": body.decode("utf-8")}))
                out.write("\n")
    elif cmd == "leases":
        ddb = boto3.client("dynamodb", endpoint_url=endpoint)
        for page in ddb.get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                out.write(json.dumps(item))
                out.write("\n")
    elif cmd == "iam-user":
        iam = boto3.client("iam", endpoint_url=endpoint)
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        out.write(json.dumps({"access_key_id": key["AccessKeyId"],
                              "secret_access_key": key["SecretAccessKey"]}))
    else:
        sys.exit(f"unknown command {cmd}\n{__doc__}")
    out.flush()


if __name__ == "__main__":
    main(sys.argv)
