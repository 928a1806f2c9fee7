"""How the local AWS's DynamoDB holds up as a fleet grows: N transactions of three items each
(a service, its instance, its deployment, about 2 KB apiece) through moto_server.py, with its
transaction fix and with moto's own copy of the table per transaction item. Prints the time per
transaction, over the first and the last tenth, and moto's resident memory at the end."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
COUNT = int(os.environ.get("PAVED_BENCH_TRANSACTIONS", "1000"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(copy_tables):
    port = free_port()
    env = dict(os.environ, PAVED_MOTO_COPY_TABLES="1" if copy_tables else "0")
    moto = subprocess.Popen([sys.executable, str(REPO / "scripts" / "moto_server.py"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        db = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        for _ in range(100):
            try:
                db.list_tables()
                break
            except Exception:
                time.sleep(0.1)
        db.create_table(TableName="bench", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}])
        body = {"S": "x" * 2000}
        times = []
        for i in range(COUNT):
            name = f"svc-{i}-{uuid.uuid4().hex[:6]}"
            items = [{"Put": {"TableName": "bench", "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "body": body},
                              "ConditionExpression": "attribute_not_exists(pk)"}}
                     for pk, sk in ((f"SERVICE#{name}", "#SERVICE"), (f"SERVICE#{name}", "INSTANCE#a"),
                                    (f"DEPLOYMENT#{name}", "#DEPLOYMENT"))]
            started = time.perf_counter()
            db.transact_write_items(TransactItems=items)
            times.append(time.perf_counter() - started)
        tenth = max(1, COUNT // 10)
        first = sum(times[:tenth]) / tenth * 1000
        last = sum(times[-tenth:]) / tenth * 1000
        return first, last, rss_mb(moto.pid)
    finally:
        moto.terminate()
        moto.wait()


def main():
    print(f"{COUNT} transactions of 3 items (about 2 KB each) into moto's DynamoDB")
    for label, copy_tables in (("moto_server.py (items saved)", False), ("moto's own (table copied)", True)):
        first, last, rss = run(copy_tables)
        print(f"  {label:<30} first tenth {first:7.1f} ms/txn   last tenth {last:7.1f} ms/txn   moto RSS {rss:7.0f} MB")


if __name__ == "__main__":
    main()
