"""paved under AWS faults: a `paved dev --faults RATE` fails that share of paved's own AWS
calls (refused, throttled, or applied with the answer lost). Whatever fails, every deployment,
service and component ends in a terminal state, what the records say succeeded exists as a
stack, and no request whose write was applied is answered ConflictException."""

import json
import tarfile
import time
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import SAMPLES, Platform, pack_entries, unique

MANIFEST = (SAMPLES / "environment-templates/vpc-env/v1/infrastructure/manifest.yaml").read_bytes()
ENV_SCHEMA = b"schema:\n  format: {openapi: '3.0.0'}\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        topic: {type: string, default: t}\n"
SVC_SCHEMA = b"schema:\n  format: {openapi: '3.0.0'}\n  service_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        size: {type: string, default: s}\n"
TOPIC = b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\nOutputs:\n  TopicArn:\n    Value: !Ref Topic\n"
ROLE = "arn:aws:iam::123456789012:role/proton-service"
COMPONENT_ROLE = "arn:aws:iam::123456789012:role/proton-components"
SERVICES, COMPONENTS = 5, 3
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "DELETE_FAILED"}


def bundle(schema, folder):
    regular = tarfile.REGTYPE
    return pack_entries([("schema/schema.yaml", schema, regular), (f"{folder}/manifest.yaml", MANIFEST, regular),
                         (f"{folder}/cloudformation.yaml", TOPIC, regular)])


class Client:
    """The Proton API as a careful client uses it: every call retried on a 5xx or a throttle
    (with the same clientToken where the operation takes one); a ConflictException is kept to
    be looked at, never retried."""

    def __init__(self, platform):
        self.proton = platform.proton()
        self.conflicts = []

    def call(self, operation, **kwargs):
        for attempt in range(12):
            try:
                return getattr(self.proton, operation)(**kwargs)
            except ClientError as error:
                code = error.response["Error"]["Code"]
                status = error.response["ResponseMetadata"]["HTTPStatusCode"]
                if code == "ConflictException":
                    self.conflicts.append((operation, kwargs.get("name"), error.response["Error"]["Message"]))
                    raise
                if status < 500 and code not in ("ThrottlingException",):
                    raise
                time.sleep(min(0.2 * 2 ** attempt, 2))
        raise AssertionError(f"{operation} kept failing")


def publish(client, platform, kind, name, data, **kwargs):
    # A service template without a pipeline: its pipeline is managed elsewhere.
    extra = {"pipelineProvisioning": "CUSTOMER_MANAGED"} if kind == "service" else {}
    client.call(f"create_{kind}_template", name=name, **extra)
    key = "environmentTemplateVersion" if kind == "environment" else "serviceTemplateVersion"
    version = client.call(f"create_{kind}_template_version", templateName=name, clientToken=unique("t"),
                          source=platform.upload(data), **kwargs)[key]
    deadline = time.monotonic() + 60
    while client.call(f"get_{kind}_template_version", templateName=name, majorVersion="1",
                      minorVersion="0")[key]["status"] != "DRAFT":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    client.call(f"update_{kind}_template_version", templateName=name, majorVersion=version["majorVersion"],
                minorVersion="0", status="PUBLISHED")


def wait(check, what, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = check()
        if state is not None:
            return state
        time.sleep(1)
    raise AssertionError(f"{what} did not end within {timeout} s")


@pytest.mark.parametrize("rate", [0.10, 0.35])
def test_under_faults_everything_ends_and_records_agree_with_the_stacks(tmp_path, rate):
    platform = Platform(tmp_path, extra_args=["--faults", str(rate), "--faults-seed", str(int(rate * 100))])
    try:
        run(platform)
        stats = json.loads(urllib.request.urlopen(platform.aws + "/paved/local-stats").read())
        assert sum(stats["faults"].values()) > 20, stats["faults"]
        print(f"faults at {rate:.0%}: {stats['faults']} of {sum(stats['awsCalls'].values())} AWS calls")
    finally:
        platform.stop()


def run(platform):
    client = Client(platform)
    env_template, svc_template, env = unique("faulty-env"), unique("faulty-svc"), unique("env")
    publish(client, platform, "environment", env_template, bundle(ENV_SCHEMA, "infrastructure"))
    publish(client, platform, "service", svc_template, bundle(SVC_SCHEMA, "instance_infrastructure"),
            compatibleEnvironmentTemplates=[{"templateName": env_template, "majorVersion": "1"}],
            supportedComponentSources=["DIRECTLY_DEFINED"])
    client.call("create_environment", name=env, templateName=env_template, templateMajorVersion="1",
                protonServiceRoleArn=ROLE, componentRoleArn=COMPONENT_ROLE, spec="proton: EnvironmentSpec\nspec: {}\n")
    environment = wait(lambda: (lambda e: e if e["deploymentStatus"] in TERMINAL else None)(
        client.call("get_environment", name=env)["environment"]), "the environment", 120)
    if environment["deploymentStatus"] != "SUCCEEDED":
        # A deployment that failed under faults is terminal too; deploy again until it runs.
        client.call("update_environment", name=env, deploymentType="CURRENT_VERSION")
        environment = wait(lambda: (lambda e: e if e["deploymentStatus"] in TERMINAL else None)(
            client.call("get_environment", name=env)["environment"]), "the environment", 120)
    assert environment["deploymentStatus"] == "SUCCEEDED", environment

    services = [unique("svc") for _ in range(SERVICES)]
    for name in services:
        spec = f"proton: ServiceSpec\ninstances:\n  - name: {name}-a\n    environment: {env}\n"
        client.call("create_service", name=name, templateName=svc_template, templateMajorVersion="1", spec=spec)
    components = [unique("cmp") for _ in range(COMPONENTS)]
    for name in components:
        client.call("create_component", name=name, environmentName=env, clientToken=unique("c"),
                    manifest=MANIFEST.decode(), templateFile=TOPIC.decode())

    def all_ended():
        states = [client.call("get_service", name=n)["service"]["status"] for n in services]
        states += [client.call("get_component", name=n)["component"]["deploymentStatus"] for n in components]
        return states if not any(s.endswith("IN_PROGRESS") for s in states) else None

    wait(all_ended, "the services and components", 240)
    cfn = boto3.client("cloudformation", endpoint_url=platform.aws, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    stacks = {s["StackName"] for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]}
    outcomes = []
    for name in services:
        instance = client.call("get_service_instance", serviceName=name, name=f"{name}-a")["serviceInstance"]
        assert instance["deploymentStatus"] in TERMINAL, instance
        outcomes.append(instance["deploymentStatus"])
        if instance["deploymentStatus"] == "SUCCEEDED":
            assert f"paved-instance-{name}-{name}-a" in stacks, (name, sorted(stacks))
        else:
            assert instance.get("deploymentStatusMessage"), instance
            print(f"failed: {instance['deploymentStatusMessage']}")
    for name in components:
        component = client.call("get_component", name=name)["component"]
        outcomes.append(component["deploymentStatus"])
        if component["deploymentStatus"] == "SUCCEEDED":
            assert f"paved-component-{name}" in stacks, (name, sorted(stacks))
        else:
            assert component.get("deploymentStatusMessage"), component
            print(f"failed: {component['deploymentStatusMessage']}")
    print(f"outcomes: {sorted(outcomes)}")
    # Faults are retried away far more often than not: most deployments succeed.
    assert outcomes.count("SUCCEEDED") > len(outcomes) // 2, outcomes
    for deployment in client.call("list_deployments", maxResults=100)["deployments"]:
        assert deployment["deploymentStatus"] in TERMINAL, deployment

    # Deleting ends too: every service and component goes (or says why it could not).
    for name in services:
        client.call("delete_service", name=name)
    for name in components:
        client.call("delete_component", name=name)

    def all_gone():
        left = []
        for name in services:
            try:
                left.append(client.call("get_service", name=name)["service"]["status"])
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        for name in components:
            try:
                left.append(client.call("get_component", name=name)["component"]["deploymentStatus"])
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return left if not any(s.endswith("IN_PROGRESS") for s in left) else None

    left = wait(all_gone, "the deletions", 240)
    assert all(s in ("DELETE_FAILED",) for s in left), left
    if not left:
        # Records gone, stacks gone.
        remaining = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"}
        ours = [s for s in remaining if any(n in s for n in services + components)]
        assert ours == [], ours
    # No applied write was answered with a conflict: nothing this client did twice collided
    # with its own first attempt.
    assert client.conflicts == [], client.conflicts
