"""A staged fleet upgrade of 200 service instances end to end on `paved dev`: 20 services with
an instance in each of 10 environments, a new minor, one upgrade at a concurrency of 20, through
the real upgrade and deploy state machines in the local Step Functions. Prints the upgrade's
wall time against ceil(targets / concurrency) × one deployment's time, and the AWS calls and
task steps per target. `make bench-upgrade` (PAVED_BENCH_INSTANCES,
PAVED_BENCH_CONCURRENCY change the fleet).

One deployment's time is measured first, alone: the same MINOR_VERSION update of one instance;
the upgrade then takes the other instances. Locally moto is the engine and runs one request at
a time, so deployments at once share it; paved's own time per target is measured without moto
by `make bench-fleet`."""

import json
import os
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from conftest import Platform, pack_entries, unique  # noqa: E402

INSTANCES = int(os.environ.get("PAVED_BENCH_INSTANCES", "200"))
CONCURRENCY = int(os.environ.get("PAVED_BENCH_CONCURRENCY", "20"))
ENVIRONMENTS = 10
ROLE = "arn:aws:iam::123456789012:role/proton-service"
FILE = tarfile.REGTYPE
MANIFEST = b"infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n"
ENV_SCHEMA = b"schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        size:\n          type: string\n          default: small\n"
SVC_SCHEMA = b"schema:\n  format:\n    openapi: \"3.0.0\"\n  service_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        size:\n          type: string\n          default: small\n"
QUEUE = b"Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n"
INSTANCE = b"Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      VisibilityTimeout: 30\n"
INSTANCE_1_1 = INSTANCE + b"  Marker:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Name: '/bench/{{ service.name }}/{{ service_instance.name }}'\n      Value: '1.1'\n"


def stats(platform, method="GET"):
    request = urllib.request.Request(f"{platform.aws}/paved/local-stats", method=method)
    with urllib.request.urlopen(request) as response:
        body = response.read()
    return json.loads(body) if body else None


def paved(platform, operation, body):
    status, answer = platform.post(f"Paved20261127.{operation}", json.dumps(body))
    assert status == 200, (status, answer)
    return answer


def wait_for(check, timeout=1800, poll=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll)
    raise AssertionError("timed out")


def main():
    platform = Platform(Path(tempfile.mkdtemp()))
    try:
        proton = platform.proton()
        env_template, svc_template = unique("bench-net"), unique("bench-web")
        proton.create_environment_template(name=env_template)
        proton.create_environment_template_version(templateName=env_template, source=platform.upload(pack_entries([
            ("schema/schema.yaml", ENV_SCHEMA, FILE), ("infrastructure/manifest.yaml", MANIFEST, FILE),
            ("infrastructure/cloudformation.yaml", QUEUE, FILE)])))
        proton.update_environment_template_version(templateName=env_template, majorVersion="1", minorVersion="0",
                                                   status="PUBLISHED")
        proton.create_service_template(name=svc_template, pipelineProvisioning="CUSTOMER_MANAGED")
        compatible = [{"templateName": env_template, "majorVersion": "1"}]
        for minor, instance in (("0", INSTANCE), ("1", INSTANCE_1_1)):
            extra = {"majorVersion": "1"} if minor == "1" else {}
            proton.create_service_template_version(
                templateName=svc_template, compatibleEnvironmentTemplates=compatible, **extra,
                source=platform.upload(pack_entries([
                    ("schema/schema.yaml", SVC_SCHEMA, FILE),
                    ("instance_infrastructure/manifest.yaml", MANIFEST, FILE),
                    ("instance_infrastructure/cloudformation.yaml", instance, FILE)])))
            if minor == "1":
                break
            proton.update_service_template_version(templateName=svc_template, majorVersion="1", minorVersion="0",
                                                   status="PUBLISHED")
        envs = [unique(f"bench-e{i}") for i in range(ENVIRONMENTS)]
        for env in envs:
            proton.create_environment(name=env, templateName=env_template, templateMajorVersion="1",
                                      protonServiceRoleArn=ROLE, spec="proton: EnvironmentSpec\nspec: {}\n")
        wait_for(lambda: all(proton.get_environment(name=e)["environment"]["deploymentStatus"] == "SUCCEEDED"
                             for e in envs))
        services = [unique(f"bench-s{i}") for i in range(INSTANCES // ENVIRONMENTS)]
        setup = time.perf_counter()
        for service in services:
            lines = "".join(f"  - name: i{i}\n    environment: {env}\n" for i, env in enumerate(envs))
            proton.create_service(name=service, templateName=svc_template, templateMajorVersion="1",
                                  spec=f"proton: ServiceSpec\ninstances:\n{lines}")
        wait_for(lambda: all(proton.get_service(name=s)["service"]["status"] == "ACTIVE" for s in services))
        created = time.perf_counter() - setup
        per_deployment = created * CONCURRENCY / INSTANCES
        proton.update_service_template_version(templateName=svc_template, majorVersion="1", minorVersion="1",
                                               status="PUBLISHED")
        print(f"fleet: {len(services) * ENVIRONMENTS} instances created in {created:.1f} s", file=sys.stderr)

        # One deployment alone: the same upgrade of one instance.
        t0 = time.perf_counter()
        proton.update_service_instance(serviceName=services[0], name="i0", deploymentType="MINOR_VERSION")
        wait_for(lambda: proton.get_service_instance(serviceName=services[0], name="i0")["serviceInstance"][
            "deploymentStatus"] == "SUCCEEDED", poll=0.05)
        lone = time.perf_counter() - t0
        stats(platform, "DELETE")
        started = time.perf_counter()
        upgrade = paved(platform, "StartFleetUpgrade", {
            "templateName": svc_template, "templateType": "SERVICE", "templateMajorVersion": "1",
            "concurrency": CONCURRENCY})["upgrade"]
        record = {}

        def ended():
            record.update(paved(platform, "GetFleetUpgrade", {"upgradeId": upgrade["upgradeId"]})["upgrade"])
            return record["status"] in ("SUCCEEDED", "FAILED", "CANCELLED")
        wait_for(ended, poll=2)
        wall = time.perf_counter() - started
        counters = stats(platform)
        targets = record["counts"]["total"]
        calls = counters["awsCalls"]
        ideal = -(-targets // CONCURRENCY) * lone
        print(f"fleet upgrade on paved dev: {targets} service instances, concurrency {CONCURRENCY}\n")
        print("| figure | value |")
        print("|---|---|")
        print(f"| status | {record['status']} ({record['counts']['succeeded']} succeeded) |")
        print(f"| wall time | {wall:.1f} s |")
        print(f"| one deployment alone | {lone:.2f} s |")
        print(f"| ceil({targets}/{CONCURRENCY}) × that | {ideal:.1f} s |")
        print(f"| wall time / that | {wall / ideal:.2f} |")
        print(f"| AWS calls per target | {sum(calls.values()) / targets:.1f} "
              f"({', '.join(f'{k} {v / targets:.1f}' for k, v in sorted(calls.items()))}) |")
        print(f"| task steps per target | {sum(counters['taskSteps'].values()) / targets:.1f} |")
        print(f"| time per target, as moto serves one at a time | {wall / targets:.2f} s |")
        print(f"| creating the fleet ({INSTANCES} instance deployments at once, for comparison) | {created:.1f} s, "
              f"{per_deployment:.2f} s per {CONCURRENCY} |")
        assert record["status"] == "SUCCEEDED", record
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
