"""Local end-to-end time of create-environment → SUCCEEDED for the sample vpc-env, split into
paved's own time and the time spent waiting on CloudFormation, Step Functions and moto, with
the state transitions and AWS calls of each deployment. `make bench-deploy`.

paved's own time is the CreateEnvironment call plus the task steps, less the AWS calls they
made (all of paved's AWS calls go through `paved dev`'s local endpoint, which times them)."""

import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import boto3  # noqa: E402
from conftest import SAMPLES, Platform, pack_folder, unique  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
POLL_SECONDS = 1


def stats(platform, method="GET"):
    request = urllib.request.Request(f"{platform.aws}/paved/local-stats", method=method)
    with urllib.request.urlopen(request) as response:
        body = response.read()
    return json.loads(body) if body else None


def main():
    platform = Platform(Path(tempfile.mkdtemp()))
    try:
        proton = platform.proton()
        folder = SAMPLES / "environment-templates/vpc-env"
        template = unique("vpc-env")
        proton.create_environment_template(name=template)
        proton.create_environment_template_version(templateName=template, source=platform.upload(pack_folder(folder / "v1")))
        proton.update_environment_template_version(templateName=template, majorVersion="1", minorVersion="0", status="PUBLISHED")
        moto_port = stats(platform)["motoPort"]
        sfn = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        spec = (folder / "spec/spec.yaml").read_text()
        rows = []
        for _ in range(RUNS):
            stats(platform, "DELETE")
            name = unique("bench")
            started = time.perf_counter()
            created = proton.create_environment(name=name, templateName=template, templateMajorVersion="1",
                                                protonServiceRoleArn="arn:aws:iam::123456789012:role/proton", spec=spec)
            api_seconds = time.perf_counter() - started
            execution = ("arn:aws:states:us-east-1:123456789012:execution:paved-deploy:"
                         + created["environment"]["lastAttemptedDeploymentId"])
            while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
                time.sleep(0.02)
            total = time.perf_counter() - started
            status = proton.get_environment(name=name)["environment"]["deploymentStatus"]
            assert status == "SUCCEEDED", status
            counters = stats(platform)
            events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
            entered = [e for e in events if e["type"].endswith("StateEntered")]
            waits = sum(1 for e in entered if e["type"] == "WaitStateEntered")
            own = api_seconds + counters["taskSeconds"] - counters["awsSeconds"]
            rows.append({
                "total": total, "own": own, "aws": counters["awsSeconds"], "waits": waits * POLL_SECONDS,
                "transitions": len(entered), "calls": counters["awsCalls"], "steps": counters["taskSteps"],
            })
        print(f"create-environment → SUCCEEDED, sample vpc-env, {RUNS} runs, state machine waits of {POLL_SECONDS} s\n")
        print(f"{'run':>4} {'total s':>8} {'paved s':>8} {'AWS calls s':>12} {'Wait states s':>14} {'other s':>8} {'transitions':>12}")
        for i, r in enumerate(rows, 1):
            other = r["total"] - r["own"] - r["aws"] - r["waits"]
            print(f"{i:>4} {r['total']:>8.2f} {r['own']:>8.3f} {r['aws']:>12.2f} {r['waits']:>14.2f} {other:>8.2f} {r['transitions']:>12}")
        median = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
        print(f"\nmedian: total {median('total'):.2f} s, paved's own {median('own'):.3f} s "
              f"({median('own') / median('total'):.1%}), waiting on CloudFormation/Step Functions/moto the rest")
        print(f"AWS calls per deployment (last run): {rows[-1]['calls']} = {sum(rows[-1]['calls'].values())}")
        print(f"task steps per deployment (last run): {rows[-1]['steps']}")
        print("'other' is Step Functions' own interpreter time in moto, between states.")
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
