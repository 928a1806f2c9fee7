"""Moving from Proton: stacks made the way Proton made them (names, tags, templates rendered from
the samples, outputs) are found by `paved import`, adopted in place, and changed by paved only as
planned: a new service gets the adopted environment's outputs, the first redeploy of an adopted
instance updates the same stack and keeps its resources, and a replacement waits for a person."""

import json
import os
import subprocess
import time

import boto3
import pytest

from conftest import PAVED_BIN, REGION, SAMPLES, unique
from test_services import CONNECTION, publish, service_spec, template_of

ACCOUNT = "123456789012"
PROTON_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "proton.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
BOTH = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": ["proton.amazonaws.com", "cloudformation.amazonaws.com"]},
     "Action": "sts:AssumeRole"}]}


def aws(platform, service):
    return boto3.client(service, endpoint_url=platform.aws, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def arn(resource):
    return f"arn:aws:proton:{REGION}:{ACCOUNT}:{resource}"


def paved(platform, *args, check=True):
    """The `paved` command as the platform engineer, against `paved dev`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(platform.credentials_file), AWS_CONFIG_FILE=str(platform.config_file),
               AWS_PROFILE="paved-platform", AWS_REGION=REGION, PAVED_LOG="warn")
    result = subprocess.run([str(PAVED_BIN), *args, "--endpoint", platform.api],
                            capture_output=True, text=True, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"paved {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result


def render(*args):
    result = subprocess.run([str(PAVED_BIN), "template", "render", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def proton_stack(cfn, name, body, tags, role=None):
    """A stack as Proton left it: its name, its proton: tags, its rendered template, its role."""
    kwargs = {"RoleARN": role} if role else {}
    cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
                     Tags=[{"Key": f"proton:{k}", "Value": v} for k, v in tags.items()], **kwargs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            assert status == "CREATE_COMPLETE", status
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not complete")


def outputs_of(cfn, stack):
    return {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}


def physical(cfn, stack):
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}


@pytest.fixture(scope="module")
def left_by_proton(platform, proton, tmp_path_factory):
    """An environment, a service instance in it, the service's pipeline and a component, made by
    "Proton" in the local AWS; their templates registered in paved, as a Proton user has them."""
    tmp = tmp_path_factory.mktemp("proton")
    env_template, svc_template = unique("fargate-env"), unique("lb-svc")
    env, service = unique("dev"), unique("api")
    instance, component = f"{service}-front", unique("files")
    publish(proton, platform, "environment", env_template, SAMPLES / "environment-templates/fargate-env/v1")
    publish(proton, platform, "service", svc_template, SAMPLES / "service-templates/load-balanced-fargate-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    iam, cfn = aws(platform, "iam"), aws(platform, "cloudformation")
    role_name = unique("ProtonServiceRole")
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(PROTON_ONLY))["Role"]["Arn"]
    component_role = iam.create_role(RoleName=unique("ProtonComponentRole"),
                                     AssumeRolePolicyDocument=json.dumps(BOTH))["Role"]["Arn"]

    env_spec = SAMPLES / "environment-templates/fargate-env/spec/spec.yaml"
    env_stack = f"AWSProton-{env[:15]}-cloudformation--QYWPQLSESXEMRBY"
    proton_stack(cfn, env_stack, render("--spec", str(env_spec), "--name", env,
                                        str(SAMPLES / "environment-templates/fargate-env/v1")),
                 {"account": ACCOUNT, "environment": arn(f"environment/{env}"),
                  "template": arn(f"environment-template/{env_template}")}, role)

    spec_file = tmp / "service.yaml"
    spec_file.write_text(service_spec([(instance, env)]))
    given = tmp / "outputs.json"
    given.write_text(json.dumps({"environment": outputs_of(cfn, env_stack)}))
    bundle = str(SAMPLES / "service-templates/load-balanced-fargate-svc/v1")
    instance_stack = f"AWSProton-{service[:15]}-{instance[:15]}-cloudformation--ABCDEFGHIJKLMNO"
    proton_stack(cfn, instance_stack, render("--spec", str(spec_file), "--name", service, "--instance", instance,
                                             "--outputs", str(given), bundle),
                 {"account": ACCOUNT, "environment": arn(f"environment/{env}"), "service": arn(f"service/{service}"),
                  "service-instance": arn(f"service/{service}/service-instance/{instance}"),
                  "template": arn(f"service-template/{svc_template}")}, role)
    given.write_text(json.dumps({"environment": outputs_of(cfn, env_stack),
                                 "instances": {instance: outputs_of(cfn, instance_stack)}}))
    pipeline_stack = f"AWSProton-{service[:15]}-cloudformation--PONMLKJIHGFEDCB"
    proton_stack(cfn, pipeline_stack, render("--spec", str(spec_file), "--name", service, "--part", "pipeline",
                                             "--outputs", str(given), bundle),
                 {"account": ACCOUNT, "service": arn(f"service/{service}"),
                  "template": arn(f"service-template/{svc_template}")},
                 f"arn:aws:iam::{ACCOUNT}:role/paved-pipeline")
    component_stack = f"AWSProton-{component[:15]}-cloudformation--AAAAABBBBBCCCCC"
    proton_stack(cfn, component_stack, (SAMPLES / "component-templates/s3-bucket-component/cloudformation.yaml").read_text(),
                 {"account": ACCOUNT, "environment": arn(f"environment/{env}"),
                  "component": arn(f"component/{component}")}, component_role)
    # Someone's own stack, which is nobody's to import.
    cfn.create_stack(StackName=unique("team-bucket"), TemplateBody="Resources:\n  B:\n    Type: AWS::S3::Bucket\n")
    return dict(env=env, service=service, instance=instance, component=component, env_spec=env_spec,
                spec_file=spec_file, role_name=role_name, role=role, env_template=env_template,
                svc_template=svc_template, stacks=dict(env=env_stack, instance=instance_stack,
                                                       pipeline=pipeline_stack, component=component_stack))


def mine(answer, left):
    return {i["stackName"]: i for i in answer["items"] if i["stackName"] in left["stacks"].values()}


def import_args(left):
    return ["--spec", f"environment/{left['env']}={left['env_spec']}",
            "--spec", f"service/{left['service']}={left['spec_file']}",
            "--repository", f"{left['service']}={CONNECTION},acme/api,main"]


def test_the_plan_names_each_stack_and_a_role_only_proton_could_assume(platform, left_by_proton):
    left = left_by_proton
    shown = paved(platform, "import", "--plan")
    assert "Nothing was changed (--plan)" in shown.stdout, shown.stdout
    for stack in left["stacks"].values():
        assert stack in shown.stdout
    plan = json.loads(paved(platform, "import", "--plan", "--json", *import_args(left)).stdout)
    items = mine(plan, left)
    stacks = left["stacks"]
    assert (items[stacks["env"]]["kind"], items[stacks["env"]]["name"]) == ("ENVIRONMENT", left["env"])
    assert items[stacks["env"]]["templateName"] == left["env_template"]
    assert items[stacks["env"]]["templateVersion"] == "1.0"
    inst = items[stacks["instance"]]
    assert (inst["kind"], inst["serviceName"], inst["name"], inst["environmentName"]) == \
        ("SERVICE_INSTANCE", left["service"], left["instance"], left["env"])
    assert (items[stacks["pipeline"]]["kind"], items[stacks["pipeline"]]["serviceName"]) == ("SERVICE_PIPELINE", left["service"])
    assert (items[stacks["component"]]["kind"], items[stacks["component"]]["name"]) == ("COMPONENT", left["component"])
    assert not any(i["stackName"].startswith("team-bucket") for i in plan["items"])
    # The environment's role trusts only Proton: the plan says exactly what to add.
    env_item = items[stacks["env"]]
    assert env_item["status"] == "BLOCKED", env_item
    blocker = next(b for b in env_item["blockers"] if left["role"] in b)
    assert '"Service": "cloudformation.amazonaws.com"' in blocker and "sts:AssumeRole" in blocker
    assert items[stacks["instance"]]["status"] == "BLOCKED", "its environment cannot be adopted yet"
    # Applying adopts nothing blocked, and says so with a failing exit.
    applied = paved(platform, "import", *import_args(left), check=False)
    assert applied.returncode == 1 and "blocked" in applied.stdout, applied.stdout
    with pytest.raises(Exception):
        platform.proton().get_environment(name=left["env"])


def test_applying_adopts_in_place_and_paved_changes_them_only_as_planned(platform, proton, left_by_proton, tmp_path):
    left, stacks = left_by_proton, left_by_proton["stacks"]
    iam, cfn = aws(platform, "iam"), aws(platform, "cloudformation")
    iam.update_assume_role_policy(RoleName=left["role_name"], PolicyDocument=json.dumps(BOTH))
    before = {name: physical(cfn, stack) for name, stack in stacks.items()}
    applied = json.loads(paved(platform, "import", "--json", *import_args(left)).stdout)
    items = mine(applied, left)
    assert {i["status"] for i in items.values()} == {"ADOPTED"}, json.dumps(items, indent=1)
    assert applied["adopted"] == 4

    env = proton.get_environment(name=left["env"])["environment"]
    assert env["deploymentStatus"] == "SUCCEEDED" and env["templateName"] == left["env_template"]
    assert env["protonServiceRoleArn"] == left["role"]
    env_outputs = {o["key"]: o["valueString"] for o in proton.list_environment_outputs(environmentName=left["env"])["outputs"]}
    assert env_outputs == outputs_of(cfn, stacks["env"])
    service = proton.get_service(name=left["service"])["service"]
    assert service["status"] == "ACTIVE" and service["repositoryId"] == "acme/api"
    listed = proton.list_service_instances(serviceName=left["service"])["serviceInstances"]
    assert [(i["name"], i["environmentName"]) for i in listed] == [(left["instance"], left["env"])]
    assert proton.get_component(name=left["component"])["component"]["environmentName"] == left["env"]
    # Nothing was deployed: the stacks are as Proton left them.
    assert {name: physical(cfn, stack) for name, stack in stacks.items()} == before
    # Again: nothing more to do.
    again = json.loads(paved(platform, "import", "--json", *import_args(left)).stdout)
    assert again["adopted"] == 0 and {i["status"] for i in mine(again, left).values()} == {"ADOPTED"}

    # A new service onto the adopted environment gets its outputs.
    other, instance = unique("web"), unique("web-prod")
    platform.cli("proton", "create-service", "--name", other, "--template-name", left["svc_template"],
                 "--template-major-version", "1", "--repository-connection-arn", CONNECTION,
                 "--repository-id", "acme/web", "--branch-name", "main", "--spec", service_spec([(instance, left["env"])]))
    platform.cli("proton", "wait", "service-created", "--name", other)
    new_stack = f"paved-instance-{other}-{instance}"
    assert env_outputs["VPC"] in template_of(cfn, new_stack) and env_outputs["PublicSubnet1"] in template_of(cfn, new_stack)

    # The first redeploy of the adopted instance updates the same stack and keeps its resources.
    platform.cli("proton", "update-service-instance", "--name", left["instance"], "--service-name", left["service"],
                 "--deployment-type", "CURRENT_VERSION")
    platform.cli("proton", "wait", "service-instance-deployed", "--name", left["instance"], "--service-name", left["service"])
    got = proton.get_service_instance(name=left["instance"], serviceName=left["service"])["serviceInstance"]
    assert got["deploymentStatus"] == "SUCCEEDED", got
    assert physical(cfn, stacks["instance"]) == before["instance"]
    tags = {t["Key"]: t["Value"] for t in cfn.describe_stacks(StackName=stacks["instance"])["Stacks"][0]["Tags"]}
    assert tags["proton:service-instance"] == arn(f"service/{left['service']}/service-instance/{left['instance']}")

    # A change that would replace a resource of an adopted stack waits for confirmation.
    sample = (SAMPLES / "component-templates/s3-bucket-component/cloudformation.yaml").read_text()
    renamed = tmp_path / "cloudformation.yaml"
    renamed.write_text(sample.replace("    Properties:\n      VersioningConfiguration:",
                                      f"    Properties:\n      BucketName: {left['component']}-files\n      VersioningConfiguration:", 1))
    assert renamed.read_text() != sample
    update = ("proton", "update-component", "--name", left["component"], "--deployment-type", "CURRENT_VERSION",
              "--template-file", f"file://{renamed}")
    platform.cli(*update)
    failed = wait_ended(proton, left["component"])
    assert failed["deploymentStatus"] == "FAILED", failed
    message = failed["deploymentStatusMessage"]
    assert "would replace S3Bucket (AWS::S3::Bucket)" in message and "Nothing was changed" in message, message
    assert physical(cfn, stacks["component"]) == before["component"]
    code = message.split(" and confirmation ")[1].split(")")[0]
    component_arn = arn(f"component/{left['component']}")
    assert f"paved import confirm {component_arn} {code}" in message
    paved(platform, "import", "confirm", component_arn, code)
    platform.cli(*update)
    done = wait_ended(proton, left["component"])
    assert done["deploymentStatus"] == "SUCCEEDED", done
    assert physical(cfn, stacks["component"])["S3Bucket"] != before["component"]["S3Bucket"]


def wait_ended(proton, component, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = proton.get_component(name=component)["component"]
        if got["deploymentStatus"] not in ("IN_PROGRESS", "CANCELLING"):
            return got
        time.sleep(0.5)
    raise AssertionError("the component's deployment did not end")
