"""Services through the stock aws CLI against `paved dev`: instances deployed into their
environments, then the pipeline, with outputs flowing environment → instance → pipeline."""

import json
import os
import subprocess
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import SAMPLES, VENV, pack_folder, unique

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


def template_of(stacks, name):
    """A stack's template as text (boto3 hands JSON templates back parsed)."""
    body = stacks.get_template(StackName=name)["TemplateBody"]
    return body if isinstance(body, str) else json.dumps(body)


def buildspecs(template_text):
    """The inline buildspecs of a deployed pipeline's CodeBuild projects, parsed, with each
    intrinsic part of a Fn::Join read as the text REF."""
    template = json.loads(template_text)
    found = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CodeBuild::Project":
            continue
        spec = resource["Properties"]["Source"]["BuildSpec"]
        if isinstance(spec, dict) and "Fn::Join" in spec:
            spec = "".join(p if isinstance(p, str) else "REF" for p in spec["Fn::Join"][1])
        found[name] = json.loads(spec)
    return found


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


def test_a_load_balanced_fargate_service_deploys_its_instance_then_its_pipeline(platform, proton, fargate_env, tmp_path):
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
    instance_template = template_of(cfn, f"paved-instance-{service}-{service}-prod")
    assert env_outputs["VPC"] in instance_template and env_outputs["PublicSubnet1"] in instance_template
    pipeline_template = template_of(cfn, f"paved-pipeline-{service}")
    assert f"{service}-prod" in pipeline_template and "acme/web" in pipeline_template
    # Each CodeBuild project first sets up the Proton model for execute-api, then runs the
    # sample's own commands unchanged; the line, run the way CodeBuild runs it (sh, as the
    # build's user), makes the aws CLI of the build sign Proton calls for execute-api.
    specs = buildspecs(pipeline_template)
    assert set(specs) == {"BuildProject", "Deploy1Project"}, set(specs)  # one deploy project per instance
    sample = (SAMPLES / "service-templates/load-balanced-fargate-svc/v1/pipeline_infrastructure/cloudformation.yaml").read_text()
    for spec in specs.values():
        setup, *own = spec["phases"]["install"]["commands"]
        assert "base64 -d | python3 -" in setup
        assert all(command.split(" ")[0] in sample for command in own), own
    home = tmp_path / "build-home"
    home.mkdir()
    build_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    build_env.update(HOME=str(home), PATH=f"{VENV / 'bin'}:{os.environ['PATH']}")
    ran = subprocess.run(["sh", "-c", setup], capture_output=True, text=True, env=build_env, timeout=60)
    assert ran.returncode == 0 and "sign for execute-api" in ran.stdout, (ran.stdout, ran.stderr)
    build_env.update(AWS_SHARED_CREDENTIALS_FILE=str(platform.credentials_file), AWS_PROFILE="paved-platform")
    signed = subprocess.run([str(VENV / "bin" / "aws"), "--debug", "proton", "get-service", "--name", service,
                             "--region", "us-east-1", "--endpoint-url", platform.api],
                            capture_output=True, text=True, env=build_env, timeout=60)
    assert signed.returncode == 0 and "/us-east-1/execute-api/aws4_request" in signed.stderr, signed.stderr[-1500:]

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
    instance_template = template_of(cfn, f"paved-instance-{service}-{service}-prod")
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


COMPONENT = SAMPLES / "component-templates/s3-bucket-component"
COMPONENT_ROLE = "arn:aws:iam::123456789012:role/proton-components"


def cfn(platform):
    return boto3.client("cloudformation", endpoint_url=platform.aws, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def fargate_environments(platform, proton, names):
    template = unique("fargate-env")
    publish(proton, platform, "environment", template, SAMPLES / "environment-templates/fargate-env/v1")
    spec = (SAMPLES / "environment-templates/fargate-env/spec/spec.yaml").read_text()
    for env in names:
        platform.cli("proton", "create-environment", "--name", env, "--template-name", template,
                     "--template-major-version", "1", "--proton-service-role-arn", ROLE,
                     "--component-role-arn", COMPONENT_ROLE, "--spec", spec)
    for env in names:
        platform.cli("proton", "wait", "environment-deployed", "--name", env)
    return template


@pytest.fixture(scope="module")
def shared_env(platform, proton):
    """A fargate environment that takes components, for the tests that do not delete it."""
    env = unique("shared")
    return fargate_environments(platform, proton, [env]), env


def test_two_environments_two_instances_a_component_and_the_pipeline_through_their_lifecycle(platform, proton, tmp_path):
    prod, dev = unique("prod"), unique("dev")
    env_template = fargate_environments(platform, proton, [prod, dev])
    template, service = unique("lb-svc"), unique("web")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/load-balanced-fargate-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    proton.update_service_template_version(templateName=template, majorVersion="1", minorVersion="0",
                                           supportedComponentSources=["DIRECTLY_DEFINED"])
    web_prod, web_dev = f"{service}-prod", f"{service}-dev"
    platform.cli("proton", "create-service", "--name", service, "--template-name", template,
                 "--template-major-version", "1", "--repository-connection-arn", CONNECTION,
                 "--repository-id", "acme/web", "--branch-name", "main",
                 "--spec", service_spec([(web_prod, prod), (web_dev, dev)]))
    platform.cli("proton", "wait", "service-created", "--name", service)
    stacks = cfn(platform)
    pipeline = template_of(stacks, f"paved-pipeline-{service}")
    assert web_prod in pipeline and web_dev in pipeline
    # The pipeline's CodeBuild projects call paved, not the retired Proton endpoint.
    assert "AWS_ENDPOINT_URL_PROTON" in pipeline and platform.api in pipeline, pipeline
    # What paved deployed is still a valid template (written as JSON once the variable is added).
    rendered = tmp_path / "pipeline.json"
    rendered.write_text(pipeline)
    lint = subprocess.run([str(VENV / "bin" / "cfn-lint"), "--format", "parseable", str(rendered)],
                          capture_output=True, text=True)
    assert lint.returncode == 0 or not any(":E" in line for line in lint.stdout.splitlines()), lint.stdout

    # The sample S3 component attached to the prod instance; its outputs reach the instance.
    created = platform.cli_json(
        "proton", "create-component", "--name", f"{service}-files", "--service-name", service,
        "--service-instance-name", web_prod, "--manifest", f"file://{COMPONENT / 'manifest.yaml'}",
        "--template-file", f"file://{COMPONENT / 'cloudformation.yaml'}")["component"]
    assert created["deploymentStatus"] == "IN_PROGRESS" and created["environmentName"] == prod
    # An instance cannot change while its component deploys.
    with pytest.raises(ClientError) as caught:
        proton.update_service_instance(name=web_prod, serviceName=service, deploymentType="CURRENT_VERSION")
    assert caught.value.response["Error"]["Code"] == "ConflictException", caught.value.response
    platform.cli("proton", "wait", "component-deployed", "--name", f"{service}-files")
    outputs = {o["key"]: o["valueString"] for o in
               proton.list_component_outputs(componentName=f"{service}-files")["outputs"]}
    assert set(outputs) == {"BucketName", "BucketAccessPolicyArn"}
    instance_stack = f"paved-instance-{service}-{web_prod}"
    wait_for(lambda: outputs["BucketAccessPolicyArn"] in template_of(stacks, instance_stack))
    platform.cli("proton", "wait", "service-instance-deployed", "--name", web_prod, "--service-name", service)
    listed = proton.list_components(serviceName=service)["components"]
    assert [(c["name"], c["serviceInstanceName"]) for c in listed] == [(f"{service}-files", web_prod)]
    assert proton.list_component_provisioned_resources(componentName=f"{service}-files")["provisionedResources"]
    kinds = {d["targetResourceType"] for d in proton.list_deployments(componentName=f"{service}-files")["deployments"]}
    assert kinds == {"COMPONENT"}

    # UpdateService removes the dev instance; the pipeline is redeployed for the new list.
    platform.cli("proton", "update-service", "--name", service, "--spec", service_spec([(web_prod, prod)]))
    platform.cli("proton", "wait", "service-updated", "--name", service)
    with pytest.raises(ClientError):
        stacks.describe_stacks(StackName=f"paved-instance-{service}-{web_dev}")
    pipeline = template_of(stacks, f"paved-pipeline-{service}")
    assert web_prod in pipeline and web_dev not in pipeline

    # UpdateServicePipeline deploys new pipeline inputs.
    new_pipeline_spec = service_spec([(web_prod, prod)], pipeline="pipeline:\n  dockerfile: Dockerfile.prod\n")
    platform.cli("proton", "update-service-pipeline", "--service-name", service, "--deployment-type",
                 "CURRENT_VERSION", "--spec", new_pipeline_spec)
    platform.cli("proton", "wait", "service-pipeline-deployed", "--name", service)
    assert "Dockerfile.prod" in template_of(stacks, f"paved-pipeline-{service}")
    with pytest.raises(ClientError) as caught:
        proton.cancel_service_pipeline_deployment(serviceName=service)
    assert caught.value.response["Error"]["Code"] == "ValidationException"

    # Teardown in order: the service waits for its component to go.
    with pytest.raises(ClientError) as caught:
        proton.delete_service(name=service)
    assert "delete the component first" in caught.value.response["Error"]["Message"]
    platform.cli("proton", "delete-component", "--name", f"{service}-files")
    platform.cli("proton", "wait", "component-deleted", "--name", f"{service}-files")
    with pytest.raises(ClientError):
        stacks.describe_stacks(StackName=f"paved-component-{service}-files")
    platform.cli("proton", "delete-service", "--name", service)
    platform.cli("proton", "wait", "service-deleted", "--name", service)


def test_an_instance_added_on_its_own_deploys_and_is_listed(platform, proton, shared_env):
    env_template, env = shared_env
    template, service = unique("backend-svc"), unique("api")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/backend-fargate-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    spec = (SAMPLES / "service-templates/backend-fargate-svc/spec/spec.yaml").read_text()
    spec = spec.replace("backend-fargate-svc-prod", f"{service}-one").replace("fargate-env-prod", env)
    platform.cli("proton", "create-service", "--name", service, "--template-name", template,
                 "--template-major-version", "1", "--repository-connection-arn", CONNECTION,
                 "--repository-id", "acme/api", "--branch-name", "main", "--spec", spec)
    platform.cli("proton", "wait", "service-created", "--name", service)
    second = spec.replace(f"{service}-one", f"{service}-two")
    added = platform.cli_json("proton", "create-service-instance", "--name", f"{service}-two",
                              "--service-name", service, "--spec", second)["serviceInstance"]
    assert added["deploymentStatus"] == "IN_PROGRESS" and added["environmentName"] == env
    platform.cli("proton", "wait", "service-instance-deployed", "--name", f"{service}-two", "--service-name", service)
    names = [i["name"] for i in proton.list_service_instances(serviceName=service)["serviceInstances"]]
    assert names == [f"{service}-one", f"{service}-two"]
    cfn(platform).describe_stacks(StackName=f"paved-instance-{service}-{service}-two")
    platform.cli("proton", "delete-service", "--name", service)
    platform.cli("proton", "wait", "service-deleted", "--name", service)


def test_the_lambda_sample_deploys_on_its_vpc_environment(platform, proton):
    env_template, env = unique("vpc-env"), unique("vpc-prod")
    publish(proton, platform, "environment", env_template, SAMPLES / "environment-templates/vpc-env/v1")
    proton.create_environment(name=env, templateName=env_template, templateMajorVersion="1", protonServiceRoleArn=ROLE,
                              spec=(SAMPLES / "environment-templates/vpc-env/spec/spec.yaml").read_text())
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    template, service = unique("apigw-svc"), unique("ping")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/apigw-lambda-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    spec = (SAMPLES / "service-templates/apigw-lambda-svc/spec/spec.yaml").read_text()
    spec = spec.replace("apigw-lambda-svc-prod", f"{service}-prod").replace("vpc-env-prod", env)
    platform.cli("proton", "create-service", "--name", service, "--template-name", template,
                 "--template-major-version", "1", "--repository-connection-arn", CONNECTION,
                 "--repository-id", "acme/ping", "--branch-name", "main", "--spec", spec)
    platform.cli("proton", "wait", "service-created", "--name", service)
    got = proton.get_service(name=service)["service"]
    assert got["status"] == "ACTIVE" and got["pipeline"]["deploymentStatus"] == "SUCCEEDED"
    template_body = cfn(platform).get_template(StackName=f"paved-instance-{service}-{service}-prod")["TemplateBody"]
    assert "AWS::Serverless-2016-10-31" in template_body


def test_two_services_created_at_once_in_one_environment_both_succeed(platform, proton, shared_env):
    import concurrent.futures
    env_template, env = shared_env
    template = unique("lb-svc")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/load-balanced-fargate-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    names = [unique("svc"), unique("svc")]

    def create(name):
        return platform.proton().create_service(
            name=name, templateName=template, templateMajorVersion="1", spec=service_spec([(f"{name}-i", env)]),
            repositoryConnectionArn=CONNECTION, repositoryId=f"acme/{name}", branchName="main")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(create, names))
    for name in names:
        platform.cli("proton", "wait", "service-created", "--name", name)
        assert proton.get_service(name=name)["service"]["status"] == "ACTIVE"
    # boto3's paginator pages ListServiceInstances one instance at a time, with its filters.
    paginator = proton.get_paginator("list_service_instances")
    pages = list(paginator.paginate(filters=[{"key": "environmentName", "value": env}],
                                    PaginationConfig={"PageSize": 1}))
    paged = [i["name"] for page in pages for i in page["serviceInstances"]]
    assert all(len(page["serviceInstances"]) <= 1 for page in pages)
    assert {f"{n}-i" for n in names} <= set(paged) and len(paged) == len(set(paged)), paged
    everywhere = proton.list_service_instances(filters=[{"key": "environmentName", "value": env}],
                                               sortBy="serviceName")["serviceInstances"]
    assert [i["name"] for i in everywhere] == paged
    assert all(i["environmentName"] == env for i in everywhere)
    for name in names:
        proton.delete_service(name=name)
    for name in names:
        platform.cli("proton", "wait", "service-deleted", "--name", name)


def test_bad_component_and_pipeline_requests_are_refused_and_write_nothing(platform, proton, shared_env, tmp_path):
    env_template, env = shared_env
    template, service = unique("lb-svc"), unique("web")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/load-balanced-fargate-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    proton.create_service(name=service, templateName=template, templateMajorVersion="1",
                          spec=service_spec([(f"{service}-prod", env)]),
                          repositoryConnectionArn=CONNECTION, repositoryId="acme/web", branchName="main")
    platform.cli("proton", "wait", "service-created", "--name", service)
    manifest, body = (COMPONENT / "manifest.yaml").read_text(), (COMPONENT / "cloudformation.yaml").read_text()
    cases = [
        (dict(serviceName=service, serviceInstanceName=f"{service}-prod"), "ValidationException", "supportedComponentSources"),
        (dict(serviceName=service), "ValidationException", "give both"),
        (dict(), "ValidationException", "environmentName is required"),
        (dict(environmentName="nowhere"), "ValidationException", "environment nowhere does not exist"),
    ]
    for extra, code, fragment in cases:
        with pytest.raises(ClientError) as caught:
            proton.create_component(name=f"{service}-c", manifest=manifest, templateFile=body, **extra)
        error = caught.value.response["Error"]
        assert error["Code"] == code and fragment in error["Message"], error
    assert proton.list_components(environmentName=env)["components"] == []

    # A service template without a pipeline takes no pipeline spec and no repository.
    folder = tmp_path / "no-pipeline"
    source = SAMPLES / "service-templates/load-balanced-fargate-svc/v1"
    for part in ("schema", "instance_infrastructure"):
        (folder / part).mkdir(parents=True)
        for file in (source / part).iterdir():
            (folder / part / file.name).write_bytes(file.read_bytes())
    bare = unique("bare-svc")
    proton.create_service_template(name=bare, pipelineProvisioning="CUSTOMER_MANAGED")
    proton.create_service_template_version(
        templateName=bare, source=platform.upload(pack_folder(folder)),
        compatibleEnvironmentTemplates=[{"templateName": env_template, "majorVersion": "1"}])
    proton.update_service_template_version(templateName=bare, majorVersion="1", minorVersion="0", status="PUBLISHED")
    other = unique("bare")
    with pytest.raises(ClientError) as caught:
        proton.create_service(name=other, templateName=bare, templateMajorVersion="1",
                              spec=service_spec([(f"{other}-prod", env)]))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "spec.pipeline" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        proton.get_service(name=other)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # An update naming the same instance twice is refused and changes nothing.
    with pytest.raises(ClientError) as caught:
        proton.update_service(name=service, spec=service_spec([("x", env), ("x", env)]))
    assert "more than one instance" in caught.value.response["Error"]["Message"]
    assert proton.get_service(name=service)["service"]["status"] == "ACTIVE"
    proton.delete_service(name=service)
    platform.cli("proton", "wait", "service-deleted", "--name", service)
