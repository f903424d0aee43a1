#!/usr/bin/env bash
# Create the AWS resources of the bundle in the local moto, idempotently:
#   DynamoDB table $TABLE_NAME (default blindspotx-monitoring): pk S HASH,
#     sk S RANGE, PAY_PER_REQUEST, TTL on attribute "ttl"
#   SNS topic $INCIDENTS_TOPIC_NAME (default blindspotx-incidents)
#   SQS queue $INCIDENTS_QUEUE_NAME (default blindspotx-incidents-local),
#     subscribed to the topic with raw delivery, so what was published can
#     be read back locally (the deployed stack has no such queue)
#   SQS queues blindspotx-log-metrics-failures and
#     blindspotx-incident-notifier-failures: the on-failure queues
#     `make redrive` reads
# Uses the stack env (scripts/stack.sh env) unless AWS_ENDPOINT_URL is set;
# refuses to run without an endpoint so it never touches real AWS.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  stack_env="$("$ROOT/scripts/stack.sh" env)" || die "cannot read the stack env; run scripts/stack.sh up first"
  set -a
  eval "$stack_env"
  set +a
fi
[ -x "$VENV/bin/python" ] || die ".venv missing: run scripts/bootstrap.sh first"
case "$AWS_ENDPOINT_URL" in
  http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*) ;;
  *) die "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL is not a local endpoint; refusing to provision" ;;
esac

"$VENV/bin/python" - <<'EOF'
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError

endpoint = os.environ["AWS_ENDPOINT_URL"]
region = os.environ.get("AWS_REGION", "us-east-1")
table = os.environ.get("TABLE_NAME", "blindspotx-monitoring")
topic = os.environ.get("INCIDENTS_TOPIC_NAME", "blindspotx-incidents")
queue = os.environ.get("INCIDENTS_QUEUE_NAME", "blindspotx-incidents-local")


def say(msg):
    print(f"provision: {msg}", file=sys.stderr, flush=True)


ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
try:
    ddb.describe_table(TableName=table)
    say(f"table {table}: exists")
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceNotFoundException":
        raise
    try:
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        say(f"table {table}: created")
    except ClientError as e2:
        if e2.response["Error"]["Code"] != "ResourceInUseException":
            raise
        say(f"table {table}: exists")

for _ in range(60):
    if ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
        break
    time.sleep(0.5)
else:
    sys.exit(f"provision: table {table} did not become ACTIVE")

ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName") == "ttl":
    say(f"table {table}: TTL on 'ttl' already enabled")
else:
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
    )
    say(f"table {table}: TTL on 'ttl' enabled")

sns = boto3.client("sns", endpoint_url=endpoint, region_name=region)
arn = sns.create_topic(Name=topic)["TopicArn"]  # idempotent by name
say(f"topic {topic}: {arn}")

sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region)
queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]  # idempotent by name
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
    "Attributes"
]["QueueArn"]
existing = [
    s["SubscriptionArn"]
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
    for s in page["Subscriptions"]
    if s["Protocol"] == "sqs" and s["Endpoint"] == queue_arn
]
if existing:
    subscription = existing[0]
    say(f"queue {queue}: already subscribed to {topic}")
else:
    subscription = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)[
        "SubscriptionArn"
    ]
    say(f"queue {queue}: subscribed to {topic}")
# Raw delivery: each queue message is the published body, with the SNS
# message attributes as SQS message attributes. Set every time, so an
# older subscription is brought in line.
sns.set_subscription_attributes(
    SubscriptionArn=subscription, AttributeName="RawMessageDelivery", AttributeValue="true"
)
say(f"queue {queue}: {queue_url}")

# The on-failure queues of log-metrics and incident-notifier, as the
# template names them (<stack>-<function>-failures), for `make redrive`.
for failures in ("blindspotx-log-metrics-failures", "blindspotx-incident-notifier-failures"):
    url = sqs.create_queue(QueueName=failures)["QueueUrl"]  # idempotent by name
    say(f"queue {failures}: {url}")
EOF
