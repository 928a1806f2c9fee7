"""Services through the stock aws CLI against `paved dev`: instances deployed into their
environments, then the pipeline, with outputs flowing environment → instance → pipeline."""

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import SAMPLES, pack_folder, unique

ROLE = "arn:aws:iam::123456789012:role/proton-service"
CONNECTION = "arn:aws:codestar-connections:us-east-1:123456789012:connection/example"


def publish(proton, platform, kind, name, folder, compatible=None):
    create = getattr(proton, f"create_{kind}_template")
    create(name=name)
    kwargs = {"compatibleEnvironmentTemplates": compatible} if compatible else {}
    version = getattr(proton, f"create_{kind}_template_version")(
        templateName=name, source=platform.upload(pack_folder(folder)), **kwargs)
    key = "environmentTemplateVersion" if kind == "environment" else "serviceTemplateVersion"
    getattr(proton, f"update_{kind}_template_version")(
        templateName=name, majorVersion=version[key]["majorVersion"], minorVersion="0", status="PUBLISHED")


def wait_for(check, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def fargate_env(platform, proton):
    template, env = unique("fargate-env"), unique("prod")
    publish(proton, platform, "environment", template, SAMPLES / "environment-templates/fargate-env/v1")
    proton.create_environment(name=env, templateName=template, templateMajorVersion="1", protonServiceRoleArn=ROLE,
                              spec=(SAMPLES / "environment-templates/fargate-env/spec/spec.yaml").read_text())
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    return template, env


def service_spec(instances, pipeline="pipeline:\n  dockerfile: Dockerfile\n"):
    lines = "".join(f"  - name: {name}\n    environment: {env}\n    spec:\n      port: 80\n" for name, env in instances)
    return f"proton: ServiceSpec\n{pipeline}instances:\n{lines}"


def test_a_load_balanced_fargate_service_deploys_its_instance_then_its_pipeline(platform, proton, fargate_env):
    env_template, env = fargate_env
    template, service = unique("lb-svc"), unique("web")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/load-balanced-fargate-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    created = platform.cli_json(
        "proton", "create-service", "--name", service, "--template-name", template, "--template-major-version", "1",
        "--repository-connection-arn", CONNECTION, "--repository-id", "acme/web", "--branch-name", "main",
        "--spec", service_spec([(f"{service}-prod", env)]))["service"]
    assert created["status"] == "CREATE_IN_PROGRESS"
    platform.cli("proton", "wait", "service-created", "--name", service)
    got = proton.get_service(name=service)["service"]
    assert got["status"] == "ACTIVE", got
    assert got["pipeline"]["deploymentStatus"] == "SUCCEEDED"
    assert got["repositoryId"] == "acme/web" and got["branchName"] == "main"

    instances = platform.cli_json("proton", "list-service-instances", "--service-name", service)["serviceInstances"]
    assert [(i["name"], i["environmentName"], i["deploymentStatus"]) for i in instances] == [(f"{service}-prod", env, "SUCCEEDED")]
    platform.cli("proton", "wait", "service-instance-deployed", "--name", f"{service}-prod", "--service-name", service)
    platform.cli("proton", "wait", "service-pipeline-deployed", "--name", service)

    cfn = boto3.client("cloudformation", endpoint_url=platform.aws, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    instance_stack = cfn.describe_stacks(StackName=f"paved-instance-{service}-{service}-prod")["Stacks"][0]
    stack_outputs = sorted((o["OutputKey"], o["OutputValue"]) for o in instance_stack.get("Outputs", []))
    listed = proton.list_service_instance_outputs(serviceName=service, serviceInstanceName=f"{service}-prod")["outputs"]
    assert sorted((o["key"], o["valueString"]) for o in listed) == stack_outputs

    # Environment outputs reached the instance template, instance outputs the pipeline template.
    env_outputs = {o["key"]: o["valueString"] for o in proton.list_environment_outputs(environmentName=env)["outputs"]}
    instance_template = cfn.get_template(StackName=f"paved-instance-{service}-{service}-prod")["TemplateBody"]
    assert env_outputs["VPC"] in instance_template and env_outputs["PublicSubnet1"] in instance_template
    pipeline_template = cfn.get_template(StackName=f"paved-pipeline-{service}")["TemplateBody"]
    assert f"{service}-prod" in pipeline_template and "acme/web" in pipeline_template

    deployments = proton.list_deployments(environmentName=env)["deployments"]
    assert {d["targetResourceType"] for d in deployments} >= {"ENVIRONMENT", "SERVICE_INSTANCE", "SERVICE_PIPELINE"}
    mine = proton.list_deployments(serviceName=service)["deployments"]
    assert sorted(d["targetResourceType"] for d in mine) == ["SERVICE_INSTANCE", "SERVICE_PIPELINE"]
    instance_deployment = next(d for d in mine if d["targetResourceType"] == "SERVICE_INSTANCE")
    assert instance_deployment["targetArn"].endswith(f":service/{service}/service-instance/{service}-prod")
    assert instance_deployment["serviceInstanceName"] == f"{service}-prod"
    full = proton.get_deployment(id=instance_deployment["id"])["deployment"]
    assert full["targetState"]["serviceInstance"]["templateName"] == template

    # An instance is redeployed with a new spec by the stock CLI.
    new_spec = service_spec([(f"{service}-prod", env)]).replace("port: 80", "port: 8080")
    updated = platform.cli_json("proton", "update-service-instance", "--name", f"{service}-prod", "--service-name", service,
                                "--deployment-type", "CURRENT_VERSION", "--spec", new_spec)["serviceInstance"]
    assert updated["deploymentStatus"] == "IN_PROGRESS"
    platform.cli("proton", "wait", "service-instance-deployed", "--name", f"{service}-prod", "--service-name", service)
    instance_template = cfn.get_template(StackName=f"paved-instance-{service}-{service}-prod")["TemplateBody"]
    assert "8080" in instance_template

    # An environment that runs instances cannot be deleted from under them.
    with pytest.raises(ClientError) as caught:
        proton.delete_environment(name=env)
    assert caught.value.response["Error"]["Code"] == "ConflictException"
    assert f"{service}/{service}-prod" in caught.value.response["Error"]["Message"]

    deleting = platform.cli_json("proton", "delete-service", "--name", service)["service"]
    assert deleting["status"] == "DELETE_IN_PROGRESS"
    platform.cli("proton", "wait", "service-deleted", "--name", service)
    for stack in (f"paved-instance-{service}-{service}-prod", f"paved-pipeline-{service}"):
        with pytest.raises(ClientError):
            cfn.describe_stacks(StackName=stack)
    # Nothing runs on the template version any more, and the environment can go.
    proton.delete_service_template_version(templateName=template, majorVersion="1", minorVersion="0")
    assert proton.delete_environment(name=env)["environment"]["deploymentStatus"] == "DELETE_IN_PROGRESS"


def test_a_service_in_an_incompatible_environment_is_refused_and_writes_nothing(platform, proton):
    env_template, env = unique("fargate-env"), unique("prod")
    publish(proton, platform, "environment", env_template, SAMPLES / "environment-templates/vpc-env/v1")
    proton.create_environment(name=env, templateName=env_template, templateMajorVersion="1", protonServiceRoleArn=ROLE,
                              spec=(SAMPLES / "environment-templates/vpc-env/spec/spec.yaml").read_text())
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    other = unique("other-env")
    publish(proton, platform, "environment", other, SAMPLES / "environment-templates/vpc-env/v1")
    template, service = unique("svc"), unique("api")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/load-balanced-fargate-svc/v1",
            compatible=[{"templateName": other, "majorVersion": "1"}])
    cases = [
        (service_spec([("a", env)]), "ValidationException", f"environment {env} runs {env_template}:1"),
        (service_spec([("a", "nowhere")]), "ValidationException", "environment nowhere does not exist"),
        (service_spec([("a", env), ("a", env)]), "ValidationException", "more than one instance"),
    ]
    for spec, code, fragment in cases:
        with pytest.raises(ClientError) as caught:
            proton.create_service(name=service, templateName=template, templateMajorVersion="1", spec=spec,
                                  repositoryConnectionArn=CONNECTION, repositoryId="acme/api", branchName="main")
        error = caught.value.response["Error"]
        assert error["Code"] == code and fragment in error["Message"], error
    with pytest.raises(ClientError) as caught:
        proton.create_service(name=service, templateName=template, templateMajorVersion="1",
                              spec=service_spec([("a", env)]))
    assert "repositoryConnectionArn is required" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        proton.get_service(name=service)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
