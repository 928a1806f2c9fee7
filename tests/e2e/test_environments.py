"""Environments through the stock aws CLI against `paved dev`: deployed by the state machines
into moto's CloudFormation, observable, and never left in progress."""

import json
import subprocess
import tarfile
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import PAVED_BIN, SAMPLES, pack_entries, pack_folder, unique

ROLE = "arn:aws:iam::123456789012:role/proton-service"
MANIFEST = (SAMPLES / "environment-templates/vpc-env/v1/infrastructure/manifest.yaml").read_bytes()
SCHEMA = b"schema:\n  format: {openapi: '3.0.0'}\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        topic: {type: string, default: t}\n"


def aws_client(platform, service):
    return boto3.client(service, endpoint_url=platform.aws, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def publish(platform, proton, name, source, major=None):
    if major is None:
        proton.create_environment_template(name=name)
    kwargs = {"majorVersion": major} if major else {}
    version = proton.create_environment_template_version(templateName=name, source=source, **kwargs)["environmentTemplateVersion"]
    proton.update_environment_template_version(templateName=name, majorVersion=version["majorVersion"],
                                               minorVersion=version["minorVersion"], status="PUBLISHED")
    return version


def settle(proton, name, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        environment = proton.get_environment(name=name)["environment"]
        if environment["deploymentStatus"] not in ("IN_PROGRESS", "CANCELLING", "DELETE_IN_PROGRESS"):
            return environment
        time.sleep(0.5)
    raise AssertionError(f"environment {name} still {environment['deploymentStatus']} after {timeout}s")


def simple_bundle(template: bytes) -> bytes:
    regular = tarfile.REGTYPE
    return pack_entries([("schema/schema.yaml", SCHEMA, regular), ("infrastructure/manifest.yaml", MANIFEST, regular),
                         ("infrastructure/cloudformation.yaml", template, regular)])


@pytest.mark.parametrize("sample", ["vpc-env", "fargate-env"])
def test_a_sample_environment_deploys_with_the_cli_and_its_outputs_match_the_stack(platform, proton, sample, tmp_path):
    template, env = unique(sample), unique("dev")
    folder = SAMPLES / "environment-templates" / sample
    publish(platform, proton, template, platform.upload(pack_folder(folder / "v1")))
    spec = folder / "spec" / "spec.yaml"
    created = platform.cli_json("proton", "create-environment", "--name", env, "--template-name", template,
                                "--template-major-version", "1", "--proton-service-role-arn", ROLE,
                                "--spec", f"file://{spec}")["environment"]
    assert created["deploymentStatus"] == "IN_PROGRESS"
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    environment = platform.cli_json("proton", "get-environment", "--name", env)["environment"]
    assert environment["deploymentStatus"] == "SUCCEEDED"
    assert environment["lastSucceededDeploymentId"] == created["lastAttemptedDeploymentId"]

    cfn = aws_client(platform, "cloudformation")
    stack = cfn.describe_stacks(StackName=f"paved-environment-{env}")["Stacks"][0]
    expected = sorted((o["OutputKey"], o["OutputValue"]) for o in stack["Outputs"])
    listed = platform.cli_json("proton", "list-environment-outputs", "--environment-name", env)["outputs"]
    assert sorted((o["key"], o["valueString"]) for o in listed) == expected
    assert len(expected) >= 5

    rendered = subprocess.run([str(PAVED_BIN), "template", "render", str(folder / "v1"), "--spec", str(spec),
                               "--name", env], capture_output=True, text=True, check=True).stdout
    assert cfn.get_template(StackName=f"paved-environment-{env}")["TemplateBody"] == rendered.removesuffix("\n")

    resources = platform.cli_json("proton", "list-environment-provisioned-resources", "--environment-name", env)
    names = {r["name"] for r in resources["provisionedResources"]}
    assert {"VPC", "PublicSubnet1", "PrivateSubnet2"} <= names


def test_updates_deletes_and_the_deployment_history(platform, proton, tmp_path):
    template, env = unique("vpc"), unique("env")
    folder = SAMPLES / "environment-templates/vpc-env"
    publish(platform, proton, template, platform.upload(pack_folder(folder / "v1")))
    spec = folder / "spec" / "spec.yaml"
    proton.create_environment(name=env, templateName=template, templateMajorVersion="1",
                              protonServiceRoleArn=ROLE, spec=spec.read_text())
    first = settle(proton, env)
    assert first["deploymentStatus"] == "SUCCEEDED"

    publish(platform, proton, template, platform.upload(pack_folder(folder / "v1")), major="1")
    platform.cli("proton", "update-environment", "--name", env, "--deployment-type", "MINOR_VERSION")
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    updated = proton.get_environment(name=env)["environment"]
    assert (updated["templateMajorVersion"], updated["templateMinorVersion"]) == ("1", "1")

    history = platform.cli_json("proton", "list-deployments", "--environment-name", env)["deployments"]
    assert [d["deploymentStatus"] for d in history] == ["SUCCEEDED", "SUCCEEDED"]
    assert history[0]["id"] == updated["lastSucceededDeploymentId"]
    latest = platform.cli_json("proton", "get-deployment", "--id", history[0]["id"])["deployment"]
    assert latest["initialState"]["environment"]["templateMinorVersion"] == "0"
    assert latest["targetState"]["environment"]["templateMinorVersion"] == "1"
    assert latest["targetResourceType"] == "ENVIRONMENT"
    older = platform.cli_json("proton", "delete-deployment", "--id", history[1]["id"])["deployment"]
    assert older["id"] == history[1]["id"]
    assert len(proton.list_deployments(environmentName=env)["deployments"]) == 1

    # The version in use cannot be deleted while the environment runs on it.
    with pytest.raises(ClientError) as caught:
        proton.delete_environment_template_version(templateName=template, majorVersion="1", minorVersion="1")
    assert caught.value.response["Error"]["Code"] == "ConflictException"

    deleting = platform.cli_json("proton", "delete-environment", "--name", env)["environment"]
    assert deleting["deploymentStatus"] == "DELETE_IN_PROGRESS"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            proton.get_environment(name=env)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceNotFoundException"
            break
        time.sleep(0.5)
    else:
        raise AssertionError("environment not deleted")
    with pytest.raises(ClientError):
        aws_client(platform, "cloudformation").describe_stacks(StackName=f"paved-environment-{env}")
    proton.delete_environment_template_version(templateName=template, majorVersion="1", minorVersion="0")


def test_a_failing_deployment_ends_failed_with_its_reason_and_a_fixed_version_deploys(platform, proton):
    template, env = unique("broken"), unique("env")
    broken = b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !GetAtt Missing.Name\n"
    publish(platform, proton, template, platform.upload(simple_bundle(broken)))
    proton.create_environment(name=env, templateName=template, templateMajorVersion="1",
                              protonServiceRoleArn=ROLE, spec="proton: EnvironmentSpec\nspec: {}\n")
    failed = settle(proton, env)
    assert failed["deploymentStatus"] == "FAILED"
    assert "Missing" in failed["deploymentStatusMessage"], failed
    with pytest.raises(Exception):
        platform.cli("proton", "wait", "environment-deployed", "--name", env)
    deployment = proton.get_deployment(id=failed["lastAttemptedDeploymentId"])["deployment"]
    assert deployment["deploymentStatus"] == "FAILED" and "Missing" in deployment["deploymentStatusMessage"]

    fixed = b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: '{{ environment.inputs.topic }}'\nOutputs:\n  TopicName:\n    Value: !GetAtt Topic.TopicName\n"
    version = proton.create_environment_template_version(templateName=template, source=platform.upload(simple_bundle(fixed)))
    proton.update_environment_template_version(templateName=template, majorVersion="2", minorVersion="0", status="PUBLISHED")
    assert version["environmentTemplateVersion"]["majorVersion"] == "2"
    proton.update_environment(name=env, deploymentType="MAJOR_VERSION", spec="proton: EnvironmentSpec\nspec:\n  topic: fixed\n")
    fixed_env = settle(proton, env)
    assert fixed_env["deploymentStatus"] == "SUCCEEDED", fixed_env
    outputs = proton.list_environment_outputs(environmentName=env)["outputs"]
    assert outputs == [{"key": "TopicName", "valueString": "fixed"}]


def test_bad_requests_are_refused_and_leave_nothing(platform, proton):
    template = unique("tpl")
    publish(platform, proton, template, platform.upload(pack_folder(SAMPLES / "environment-templates/vpc-env/v1")))
    env = unique("env")
    cases = [
        ({"spec": "proton: EnvironmentSpec\nspec:\n  vpc_cidr: 5\n"}, "ValidationException", "spec.vpc_cidr"),
        ({"spec": "proton: ServiceSpec\n"}, "ValidationException", "EnvironmentSpec"),
        ({"templateMajorVersion": "9"}, "ValidationException", "major 9"),
        ({"templateName": "no-such-template"}, "ValidationException", "does not exist"),
        ({"protonServiceRoleArn": None}, "ValidationException", "protonServiceRoleArn"),
    ]
    for change, code, fragment in cases:
        request = {"name": env, "templateName": template, "templateMajorVersion": "1",
                   "protonServiceRoleArn": ROLE, "spec": "proton: EnvironmentSpec\nspec: {}\n", **change}
        request = {k: v for k, v in request.items() if v is not None}
        with pytest.raises(ClientError) as caught:
            proton.create_environment(**request)
        error = caught.value.response["Error"]
        assert error["Code"] == code and fragment in error["Message"], error
    with pytest.raises(ClientError) as caught:
        proton.get_environment(name=env)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_status_changes_reach_eventbridge_and_executions_are_visible_in_step_functions(platform, proton):
    events, sqs = aws_client(platform, "events"), aws_client(platform, "sqs")
    queue = sqs.create_queue(QueueName=unique("proton-events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = unique("proton-status")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["paved.proton"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])

    template, env = unique("evt"), unique("env")
    publish(platform, proton, template, platform.upload(simple_bundle(b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")))
    created = proton.create_environment(name=env, templateName=template, templateMajorVersion="1",
                                        protonServiceRoleArn=ROLE, spec="proton: EnvironmentSpec\nspec: {}\n")
    assert settle(proton, env)["deploymentStatus"] == "SUCCEEDED"
    messages = []
    for _ in range(5):
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        messages += [json.loads(m["Body"]) for m in batch]
    mine = [m for m in messages if m["detail"]["name"] == env]
    assert [m["detail"]["status"] for m in mine] == ["IN_PROGRESS", "SUCCEEDED"]
    assert mine[1]["detail"]["previousStatus"] == "IN_PROGRESS"
    assert mine[0]["detail-type"] == "AWS Proton Environment Status Change"
    # The template version's own status changes, as Proton sent them.
    version = [m for m in messages if m["detail"]["name"] == f"{template}:1.0"]
    assert [m["detail"]["status"] for m in version] == ["DRAFT", "PUBLISHED"], version
    assert version[0]["detail-type"] == "AWS Proton Environment Template Version Status Change"

    sfn = aws_client(platform, "stepfunctions")
    execution = f"arn:aws:states:us-east-1:123456789012:execution:paved-deploy:{created['environment']['lastAttemptedDeploymentId']}"
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
    entered = [e["stateEnteredEventDetails"]["name"] for e in sfn.get_execution_history(executionArn=execution)["events"]
               if "stateEnteredEventDetails" in e]
    assert entered[0] == "Render the template and plan the deployment"
    assert "Apply the plan" in entered and entered[-1] == "Record the outputs and the result"


def test_listing_filtering_cancelling_and_retrying_with_the_cli(platform, proton):
    template, env = unique("lst"), unique("env")
    publish(platform, proton, template, platform.upload(simple_bundle(b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")))
    request = dict(name=env, templateName=template, templateMajorVersion="1", protonServiceRoleArn=ROLE,
                   spec="proton: EnvironmentSpec\nspec: {}\n")
    first = proton.create_environment(**request)["environment"]
    # A retried create is answered with the same environment and deployment.
    again = proton.create_environment(**request)["environment"]
    assert again["lastAttemptedDeploymentId"] == first["lastAttemptedDeploymentId"]
    assert settle(proton, env)["deploymentStatus"] == "SUCCEEDED"

    listed = platform.cli_json("proton", "list-environments", "--environment-templates",
                               f"templateName={template},majorVersion=1")["environments"]
    assert [e["name"] for e in listed] == [env]
    assert "spec" not in listed[0]
    other = platform.cli_json("proton", "list-environments", "--environment-templates",
                              f"templateName={template},majorVersion=2")["environments"]
    assert other == []

    result = platform.cli("proton", "cancel-environment-deployment", "--environment-name", env, check=False)
    assert result.returncode != 0 and "ValidationException" in result.stderr and "no deployment in progress" in result.stderr
    result = platform.cli("proton", "update-environment", "--name", env, "--deployment-type", "NONE",
                          "--description", "shared dev", check=False)
    assert result.returncode == 0, result.stderr
    assert proton.get_environment(name=env)["environment"]["description"] == "shared dev"
    assert len(proton.list_deployments(environmentName=env)["deployments"]) == 1, "NONE deploys nothing"


def test_tags_set_on_create_and_changed_later_reach_the_stack_with_paved_tags(platform, proton):
    template, env = unique("tagged"), unique("env")
    topic = b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
    publish(platform, proton, template, platform.upload(simple_bundle(topic)))
    created = platform.cli_json("proton", "create-environment", "--name", env, "--template-name", template,
                                "--template-major-version", "1", "--proton-service-role-arn", ROLE,
                                "--spec", "proton: EnvironmentSpec\nspec: {}\n",
                                "--tags", "key=cost-center,value=42", "key=team,value=web")["environment"]
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    cfn = aws_client(platform, "cloudformation")

    def stack_tags():
        stack = cfn.describe_stacks(StackName=f"paved-environment-{env}")["Stacks"][0]
        return {t["Key"]: t["Value"] for t in stack.get("Tags", [])}

    assert stack_tags() == {
        "cost-center": "42", "team": "web",
        "proton:account": "123456789012",
        "proton:environment": created["arn"],
        "proton:template": created["arn"].replace(f"environment/{env}", f"environment-template/{template}"),
    }

    arn = created["arn"]
    platform.cli("proton", "tag-resource", "--resource-arn", arn, "--tags", "key=team,value=payments", "key=stage,value=dev")
    platform.cli("proton", "untag-resource", "--resource-arn", arn, "--tag-keys", "cost-center")
    listed = platform.cli_json("proton", "list-tags-for-resource", "--resource-arn", arn)["tags"]
    assert sorted((t["key"], t["value"]) for t in listed) == [("stage", "dev"), ("team", "payments")]
    # The developer persona may not tag (as Proton's developer policy did not), and changes nothing.
    refused = platform.cli("proton", "tag-resource", "--resource-arn", arn, "--tags", "key=x,value=y",
                           check=False, profile="paved-developer")
    assert refused.returncode != 0 and "AccessDeniedException" in refused.stderr, refused.stderr
    # Limits are the model's, as ValidationException, with nothing changed.
    too_many = [f"key=k{i},value=v" for i in range(49)]
    refused = platform.cli("proton", "tag-resource", "--resource-arn", arn, "--tags", *too_many, check=False)
    assert refused.returncode != 0 and "ValidationException" in refused.stderr, refused.stderr
    assert len(platform.cli_json("proton", "list-tags-for-resource", "--resource-arn", arn)["tags"]) == 2

    # A redeployment of the same template carries the changed tags to the stack.
    platform.cli("proton", "update-environment", "--name", env, "--deployment-type", "CURRENT_VERSION")
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    tags = stack_tags()
    assert (tags["team"], tags["stage"]) == ("payments", "dev") and "cost-center" not in tags, tags
    assert tags["proton:environment"] == arn


def test_a_role_cloudformation_cannot_assume_is_refused_with_what_to_add(platform, proton):
    template = unique("trust")
    publish(platform, proton, template, platform.upload(simple_bundle(b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")))
    role_name = unique("written-for-proton")
    proton_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "proton.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    platform.cli("iam", "create-role", "--role-name", role_name, "--assume-role-policy-document", json.dumps(proton_only))
    arn = f"arn:aws:iam::123456789012:role/{role_name}"
    env = unique("env")
    request = dict(name=env, templateName=template, templateMajorVersion="1", spec="proton: EnvironmentSpec\nspec: {}\n")
    for role, fragment in [(arn, "its trust policy does not trust cloudformation.amazonaws.com"),
                           (arn + "-gone", "does not exist")]:
        with pytest.raises(ClientError) as caught:
            proton.create_environment(protonServiceRoleArn=role, **request)
        error = caught.value.response["Error"]
        assert error["Code"] == "ValidationException" and fragment in error["Message"], error
    # Once the role trusts CloudFormation, the same request deploys.
    both = {"Version": "2012-10-17", "Statement": proton_only["Statement"] + [
        {"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    platform.cli("iam", "update-assume-role-policy", "--role-name", role_name, "--policy-document", json.dumps(both))
    proton.create_environment(protonServiceRoleArn=arn, **request)
    assert settle(proton, env)["deploymentStatus"] == "SUCCEEDED"
