"""Unit tests of scripts/moto_server.py: per-item transaction rollback,
partition queries, SQS long polls that do not hold the serializing lock.

Run by `make test` (scripts/test.sh) with the .venv's Python:
    .venv/bin/python -m unittest scripts/test_moto_server.py
In-process moto (mock_aws) uses the same backend classes as the server.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import boto3  # noqa: E402
import moto_server  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

MISSED = moto_server.speed_up_moto()


def key(pk, sk="1"):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


class InMemoryTable(unittest.TestCase):
    """In-process moto with table `t` (`pk`, `sk`), optionally an index on `g`."""

    WITH_INDEX = False

    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.ddb = boto3.client("dynamodb", region_name="us-east-1")
        attributes = ["pk", "sk"] + (["g"] if self.WITH_INDEX else [])
        index = {
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ]
        }
        self.ddb.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
            BillingMode="PAY_PER_REQUEST",
            **(index if self.WITH_INDEX else {}),
        )

    def tearDown(self):
        self.mock.stop()


class TransactionRollback(InMemoryTable):
    def setUp(self):
        super().setUp()
        self.ddb.put_item(TableName="t", Item={**key("a"), "x": {"N": "1"}})
        self.ddb.put_item(TableName="t", Item={**key("d"), "x": {"N": "7"}})

    def get(self, pk):
        return self.ddb.get_item(TableName="t", Key=key(pk)).get("Item")

    def update(self, pk, value):
        return {
            "Update": {
                "TableName": "t",
                "Key": key(pk),
                "UpdateExpression": "SET x = :v",
                "ExpressionAttributeValues": {":v": {"N": value}},
            }
        }

    def test_every_patch_applies_to_the_pinned_moto(self):
        self.assertEqual(MISSED, [], "moto's internals changed: see moto_server.py")

    def test_a_cancelled_transaction_leaves_every_item_as_it_was(self):
        with self.assertRaises(ClientError) as raised:
            self.ddb.transact_write_items(
                TransactItems=[
                    self.update("a", "2"),
                    {"Put": {"TableName": "t", "Item": key("b")}},
                    {"Delete": {"TableName": "t", "Key": key("d")}},
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": key("c"),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        self.assertEqual(
            raised.exception.response["Error"]["Code"], "TransactionCanceledException"
        )
        self.assertEqual(self.get("a")["x"], {"N": "1"})
        self.assertIsNone(self.get("b"))
        self.assertEqual(self.get("d")["x"], {"N": "7"})

    def test_a_key_named_twice_is_refused_and_nothing_changes(self):
        with self.assertRaises(ClientError):
            self.ddb.transact_write_items(
                TransactItems=[self.update("a", "2"), self.update("a", "3")]
            )
        self.assertEqual(self.get("a")["x"], {"N": "1"})

    def test_a_transaction_that_succeeds_applies_every_item(self):
        self.ddb.transact_write_items(
            TransactItems=[
                self.update("a", "2"),
                {"Put": {"TableName": "t", "Item": key("b")}},
                {"Delete": {"TableName": "t", "Key": key("d")}},
            ]
        )
        self.assertEqual(self.get("a")["x"], {"N": "2"})
        self.assertIsNotNone(self.get("b"))
        self.assertIsNone(self.get("d"))

    def test_a_condition_is_evaluated_anew_each_time_it_is_used(self):
        def bump(expected, new):
            self.ddb.update_item(
                TableName="t",
                Key=key("a"),
                UpdateExpression="SET x = :new",
                ConditionExpression="x = :old",
                ExpressionAttributeValues={":old": {"N": expected}, ":new": {"N": new}},
            )

        bump("1", "2")
        with self.assertRaises(self.ddb.exceptions.ConditionalCheckFailedException):
            bump("1", "3")
        bump("2", "3")
        self.assertEqual(self.get("a")["x"], {"N": "3"})
        put = dict(TableName="t", Item=key("n"), ConditionExpression="attribute_not_exists(pk)")
        self.ddb.put_item(**put)
        with self.assertRaises(self.ddb.exceptions.ConditionalCheckFailedException):
            self.ddb.put_item(**put)


class PartitionQueries(InMemoryTable):
    """Queries answer as moto's whole-table path did: same items, same order."""

    WITH_INDEX = True

    def setUp(self):
        super().setUp()
        for pk in ("a", "b", "c"):
            for sk in ("3", "1", "2", "5", "4"):
                item = {**key(pk, sk), "g": {"S": f"g{sk}"}}
                self.ddb.put_item(TableName="t", Item=item)

    def query(self, **extra):
        return self.ddb.query(
            TableName="t",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "b"}, **extra.pop("values", {})},
            **extra,
        )

    @staticmethod
    def keys(out):
        return [(i["pk"]["S"], i["sk"]["S"]) for i in out["Items"]]

    def test_a_partition_comes_back_whole_and_sorted(self):
        self.assertEqual(self.keys(self.query()), [("b", s) for s in "12345"])

    def test_descending_with_a_range_condition(self):
        out = self.ddb.query(
            TableName="t",
            KeyConditionExpression="pk = :p AND sk >= :s",
            ExpressionAttributeValues={":p": {"S": "b"}, ":s": {"S": "3"}},
            ScanIndexForward=False,
        )
        self.assertEqual(self.keys(out), [("b", "5"), ("b", "4"), ("b", "3")])

    def test_pages_follow_each_other(self):
        first = self.query(Limit=2)
        second = self.query(Limit=2, ExclusiveStartKey=first["LastEvaluatedKey"])
        self.assertEqual(self.keys(first) + self.keys(second), [("b", s) for s in "1234"])

    def test_an_unknown_partition_is_empty(self):
        out = self.query(values={":p": {"S": "zz"}})
        self.assertEqual(out["Items"], [])

    def test_index_queries_still_read_every_partition(self):
        out = self.ddb.query(
            TableName="t",
            IndexName="by-g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "g2"}},
        )
        self.assertEqual(sorted(self.keys(out)), [("a", "2"), ("b", "2"), ("c", "2")])


class LongPollOutsideTheLock(unittest.TestCase):
    """Against a real serialized moto server on an ephemeral port."""

    def setUp(self):
        app = moto_server.SerializedApp(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{self.server.server_port}"
        options = dict(
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.sqs = boto3.client("sqs", **options)
        self.ddb = boto3.client("dynamodb", **options)
        # moto's backends are per process: a queue of its own per test.
        name = f"q-{self.id().rsplit('.', 1)[-1][:60]}"
        self.queue = self.sqs.create_queue(QueueName=name)["QueueUrl"]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def long_poll(self, wait_s, result):
        started = time.monotonic()
        out = self.sqs.receive_message(QueueUrl=self.queue, WaitTimeSeconds=wait_s)
        result["messages"] = out.get("Messages", [])
        result["seconds"] = time.monotonic() - started

    def test_other_requests_are_served_while_a_long_poll_waits(self):
        result = {}
        poller = threading.Thread(target=self.long_poll, args=(3, result))
        poller.start()
        time.sleep(0.3)
        started = time.monotonic()
        self.ddb.list_tables()
        served_in = time.monotonic() - started
        poller.join()
        self.assertLess(served_in, 1.0, "list_tables waited for the long poll")
        self.assertEqual(result["messages"], [])
        self.assertGreaterEqual(result["seconds"], 2.9, "an empty long poll waits it out")

    def test_a_long_poll_returns_the_message_sent_while_it_waits(self):
        result = {}
        poller = threading.Thread(target=self.long_poll, args=(5, result))
        poller.start()
        time.sleep(0.3)
        self.sqs.send_message(QueueUrl=self.queue, MessageBody="page")
        poller.join()
        self.assertEqual([m["Body"] for m in result["messages"]], ["page"])
        self.assertLess(result["seconds"], 4.0)


if __name__ == "__main__":
    unittest.main()
