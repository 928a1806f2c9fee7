"""The local AWS's DynamoDB transactions, as paved relies on them: a cancelled transaction leaves
every item it named as it was (scripts/moto_server.py saves and restores those items instead of
moto's copy of the whole table)."""

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import REGION


def test_a_cancelled_transaction_changes_none_of_its_items(platform):
    db = boto3.client("dynamodb", endpoint_url=platform.aws, region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    table = f"txn-{uuid.uuid4().hex[:8]}"
    db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                               {"AttributeName": "sk", "KeyType": "RANGE"}])
    key = lambda pk: {"pk": {"S": pk}, "sk": {"S": "#"}}  # noqa: E731
    db.put_item(TableName=table, Item={**key("kept"), "v": {"N": "1"}})
    db.put_item(TableName=table, Item={**key("gone"), "v": {"N": "1"}})
    with pytest.raises(ClientError) as caught:
        db.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {**key("new"), "v": {"N": "1"}}}},
            {"Put": {"TableName": table, "Item": {**key("kept"), "v": {"N": "2"}}}},
            {"Delete": {"TableName": table, "Key": key("gone")}},
            {"Update": {"TableName": table, "Key": key("counter"), "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": table, "Key": key("missing"),
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    item = lambda pk: db.get_item(TableName=table, Key=key(pk)).get("Item")  # noqa: E731
    assert item("new") is None and item("counter") is None
    assert item("kept")["v"] == {"N": "1"} and item("gone")["v"] == {"N": "1"}
    # And one that passes writes all of it.
    db.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {**key("new"), "v": {"N": "1"}}}},
        {"Delete": {"TableName": table, "Key": key("gone")}},
    ])
    assert item("new") is not None and item("gone") is None
