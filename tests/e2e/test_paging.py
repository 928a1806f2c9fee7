"""Paging as SDKs page: boto3's paginators and filters over ListServiceInstances, and every List
operation paved serves refuses a token it did not issue and a page size outside the model's."""

import tarfile

import botocore.session
import pytest
from botocore.exceptions import ClientError

from conftest import pack_entries, unique

ROLE = "arn:aws:iam::123456789012:role/proton-service"
COMPONENT_ROLE = "arn:aws:iam::123456789012:role/proton-components"
MANIFEST = b"infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n"
ENV_SCHEMA = b"schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        size:\n          type: string\n          default: small\n"
SVC_SCHEMA = b"schema:\n  format:\n    openapi: \"3.0.0\"\n  service_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        size:\n          type: string\n          default: small\n"
QUEUE = b"Resources:\n  Queue:\n    Type: AWS::SQS::Queue\nOutputs:\n  Size:\n    Value: '{{ environment.inputs.size }}'\n"
INSTANCE = b"Resources:\n  Queue:\n    Type: AWS::SQS::Queue\nOutputs:\n  Size:\n    Value: '{{ service_instance.inputs.size }}'\n"
FILE = tarfile.REGTYPE


def publish(proton, platform, kind, name, entries, pipeline=False, **extra):
    # A service template whose pipeline is its users' own has no pipeline in its bundle.
    own = {"pipelineProvisioning": "CUSTOMER_MANAGED"} if kind == "service" and not pipeline else {}
    getattr(proton, f"create_{kind}_template")(name=name, **own)
    getattr(proton, f"create_{kind}_template_version")(
        templateName=name, source=platform.upload(pack_entries(entries)), **extra)
    getattr(proton, f"update_{kind}_template_version")(
        templateName=name, majorVersion="1", minorVersion="0", status="PUBLISHED")


@pytest.fixture(scope="module")
def fleet(platform, proton):
    """Two environments and three services with four instances between them."""
    env_template, svc_template = unique("queue-env"), unique("queue-svc")
    publish(proton, platform, "environment", env_template, [
        ("schema/schema.yaml", ENV_SCHEMA, FILE), ("infrastructure/manifest.yaml", MANIFEST, FILE),
        ("infrastructure/cloudformation.yaml", QUEUE, FILE)])
    publish(proton, platform, "service", svc_template, [
        ("schema/schema.yaml", SVC_SCHEMA, FILE),
        ("instance_infrastructure/manifest.yaml", MANIFEST, FILE),
        ("instance_infrastructure/cloudformation.yaml", INSTANCE, FILE)],
        compatibleEnvironmentTemplates=[{"templateName": env_template, "majorVersion": "1"}])
    envs = [unique("pg-a"), unique("pg-b")]
    for env in envs:
        proton.create_environment(name=env, templateName=env_template, templateMajorVersion="1",
                                  protonServiceRoleArn=ROLE, componentRoleArn=COMPONENT_ROLE,
                                  spec="proton: EnvironmentSpec\nspec: {}\n")
    for env in envs:
        platform.cli("proton", "wait", "environment-deployed", "--name", env)
    services = {unique("pg-one"): [("i1", envs[0]), ("i2", envs[1])],
                unique("pg-two"): [("i3", envs[0])],
                unique("pg-three"): [("i4", envs[1])]}
    for service, instances in services.items():
        lines = "".join(f"  - name: {name}\n    environment: {env}\n" for name, env in instances)
        proton.create_service(name=service, templateName=svc_template, templateMajorVersion="1",
                              spec=f"proton: ServiceSpec\ninstances:\n{lines}")
    for service in services:
        platform.cli("proton", "wait", "service-created", "--name", service)
    # One service with a pipeline, for the pipeline listings.
    piped_template, piped = unique("piped-svc"), unique("pg-piped")
    publish(proton, platform, "service", piped_template, [
        ("schema/schema.yaml", SVC_SCHEMA, FILE),
        ("instance_infrastructure/manifest.yaml", MANIFEST, FILE),
        ("instance_infrastructure/cloudformation.yaml", INSTANCE, FILE),
        ("pipeline_infrastructure/manifest.yaml", MANIFEST, FILE),
        ("pipeline_infrastructure/cloudformation.yaml", b"Resources:\n  Artifacts:\n    Type: AWS::S3::Bucket\n", FILE)],
        pipeline=True, compatibleEnvironmentTemplates=[{"templateName": env_template, "majorVersion": "1"}])
    proton.create_service(name=piped, templateName=piped_template, templateMajorVersion="1",
                          repositoryConnectionArn="arn:aws:codestar-connections:us-east-1:123456789012:connection/x",
                          repositoryId="acme/piped", branchName="main",
                          spec=f"proton: ServiceSpec\npipeline: {{}}\ninstances:\n  - name: p1\n    environment: {envs[0]}\n")
    platform.cli("proton", "wait", "service-created", "--name", piped)
    component = unique("pg-files")
    proton.create_component(name=component, environmentName=envs[0], manifest=MANIFEST.decode(),
                            templateFile=QUEUE.decode().replace("environment.inputs.size", "environment.name"))
    return dict(envs=envs, services=services, env_template=env_template, svc_template=svc_template,
                component=component, piped=piped)


def all_instances(proton, page_size, **filters):
    pages = list(proton.get_paginator("list_service_instances").paginate(
        PaginationConfig={"PageSize": page_size}, **filters))
    return pages, [(i["serviceName"], i["name"], i["environmentName"]) for p in pages for i in p["serviceInstances"]]


def test_paginators_and_filters_of_list_service_instances_page_by_one(proton, fleet):
    services, (env_a, env_b) = fleet["services"], fleet["envs"]
    mine = {(s, n, e) for s, instances in services.items() for n, e in instances}
    ours = lambda rows: [r for r in rows if r in mine]  # noqa: E731 (other tests' instances are there too)

    pages, rows = all_instances(proton, 1)
    assert all(len(p["serviceInstances"]) <= 1 for p in pages)
    assert len(rows) == len(set(rows)), "no instance twice"
    assert set(ours(rows)) == mine

    _, in_a = all_instances(proton, 1, filters=[{"key": "environmentName", "value": env_a}])
    assert sorted(ours(in_a)) == sorted(r for r in mine if r[2] == env_a)
    assert all(r[2] == env_a for r in in_a), "only that environment's instances"
    one = next(iter(services))
    _, of_one = all_instances(proton, 1, serviceName=one)
    assert sorted(of_one) == sorted(r for r in mine if r[0] == one)
    _, both = all_instances(proton, 1, serviceName=one, filters=[{"key": "environmentName", "value": env_b}])
    assert both == [(one, "i2", env_b)]
    _, by_template = all_instances(proton, 1, filters=[{"key": "templateName", "value": fleet["svc_template"]}])
    assert sorted(by_template) == sorted(mine)
    _, named = all_instances(proton, 2, sortBy="name", sortOrder="DESCENDING",
                             filters=[{"key": "templateName", "value": fleet["svc_template"]}])
    assert [n for _, n, _ in named] == ["i4", "i3", "i2", "i1"]


def list_calls(fleet):
    """Every List operation paved serves, with the members it requires filled in."""
    env, service = fleet["envs"][0], next(iter(fleet["services"]))
    required = {"environmentName": env, "serviceName": service, "serviceInstanceName": "i1",
                "componentName": fleet["component"], "templateName": fleet["env_template"],
                "resourceArn": f"arn:aws:proton:us-east-1:123456789012:environment/{env}"}
    model = botocore.session.get_session().get_service_model("proton")
    unbuilt = {"ListEnvironmentAccountConnections", "ListRepositories", "ListRepositorySyncDefinitions"}
    for name in model.operation_names:
        if not name.startswith("List") or name in unbuilt:
            continue
        shape = model.operation_model(name).input_shape
        params = {m: required[m] for m in shape.required_members}
        if name == "ListServiceTemplateVersions":
            params["templateName"] = fleet["svc_template"]
        if name.startswith("ListServicePipeline"):
            params["serviceName"] = fleet["piped"]
        yield name, params, "maxResults" in shape.members


def snake(name):
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def test_every_list_refuses_a_forged_token_and_a_page_size_outside_the_model(raw_proton, fleet):
    checked, failures = [], []
    for name, params, paged in list_calls(fleet):
        call = getattr(raw_proton, snake(name))
        call(**params)  # the call itself is answered
        bad = [{"nextToken": "forged-token"}, {"nextToken": ""}]
        if paged:
            bad += [{"maxResults": 0}, {"maxResults": 101}, {"maxResults": -1}]
        for extra in bad:
            try:
                call(**params, **extra)
                failures.append((name, extra, "answered"))
                continue
            except ClientError as caught:
                error = caught.response["Error"]
            if error["Code"] != "ValidationException" or next(iter(extra)) not in error["Message"]:
                failures.append((name, extra, error))
        checked.append(name)
    assert not failures, "\n".join(map(str, failures))
    assert len(checked) == 18, checked
