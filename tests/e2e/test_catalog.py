"""The template catalog through the stock aws CLI and boto3, as its users drive it."""

import json
import os
import tarfile
import threading

import pytest
from botocore.exceptions import ClientError, WaiterError

from conftest import SAMPLES, pack_entries, pack_folder, unique

FILE = tarfile.REGTYPE
ENV_SCHEMA = (SAMPLES / "environment-templates/vpc-env/v1/schema/schema.yaml").read_bytes()
ENV_MANIFEST = (SAMPLES / "environment-templates/vpc-env/v1/infrastructure/manifest.yaml").read_bytes()


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def sample_env_folders():
    return sorted(p.parents[2] for p in SAMPLES.glob("**/v1/infrastructure/manifest.yaml"))


def sample_service_folders():
    return sorted(p.parents[2] for p in SAMPLES.glob("**/v1/instance_infrastructure/manifest.yaml"))


def test_the_readme_walkthrough_works_with_the_stock_cli(platform, tmp_path):
    name = unique("vpc-env")
    bundle = tmp_path / "vpc-env.tar.gz"
    bundle.write_bytes(pack_folder(SAMPLES / "environment-templates/vpc-env/v1"))
    platform.cli("s3", "cp", str(bundle), f"s3://{platform.bucket}/bundles-in/{name}.tar.gz")
    created = platform.cli_json("proton", "create-environment-template", "--name", name, "--display-name", "VPC")
    assert created["environmentTemplate"]["name"] == name
    version = platform.cli_json(
        "proton", "create-environment-template-version", "--template-name", name,
        "--source", f"s3={{bucket={platform.bucket},key=bundles-in/{name}.tar.gz}}",
    )["environmentTemplateVersion"]
    assert (version["majorVersion"], version["minorVersion"]) == ("1", "0")
    platform.cli("proton", "wait", "environment-template-version-registered", "--template-name", name,
                 "--major-version", "1", "--minor-version", "0")
    published = platform.cli_json(
        "proton", "update-environment-template-version", "--template-name", name,
        "--major-version", "1", "--minor-version", "0", "--status", "PUBLISHED",
    )["environmentTemplateVersion"]
    assert published["status"] == "PUBLISHED"
    template = platform.cli_json("proton", "get-environment-template", "--name", name)["environmentTemplate"]
    assert template["recommendedVersion"] == "1.0"
    assert template["arn"].endswith(f":environment-template/{name}")


def test_every_catalog_operation_answers_in_the_models_shapes(platform, proton):
    env, svc = unique("env"), unique("svc")
    env_source = platform.upload(pack_folder(SAMPLES / "environment-templates/fargate-env/v1"))
    svc_source = platform.upload(pack_folder(SAMPLES / "service-templates/load-balanced-fargate-svc/v1"))

    assert proton.create_environment_template(name=env, description="shared VPC")["environmentTemplate"]["name"] == env
    assert proton.get_environment_template(name=env)["environmentTemplate"]["description"] == "shared VPC"
    assert env in [t["name"] for t in proton.list_environment_templates()["templates"]]
    updated = proton.update_environment_template(name=env, displayName="Fargate")["environmentTemplate"]
    assert updated["displayName"] == "Fargate"

    v = proton.create_environment_template_version(templateName=env, source=env_source)["environmentTemplateVersion"]
    assert v["status"] == "DRAFT" and "VPCEnvironmentInput" not in v["schema"]
    proton.get_waiter("environment_template_version_registered").wait(
        templateName=env, majorVersion="1", minorVersion="0", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    got = proton.get_environment_template_version(templateName=env, majorVersion="1", minorVersion="0")
    assert got["environmentTemplateVersion"]["schema"] == v["schema"]
    listed = proton.list_environment_template_versions(templateName=env)["templateVersions"]
    assert [(x["majorVersion"], x["minorVersion"]) for x in listed] == [("1", "0")]
    published = proton.update_environment_template_version(
        templateName=env, majorVersion="1", minorVersion="0", status="PUBLISHED", description="first")
    assert published["environmentTemplateVersion"]["recommendedMinorVersion"] == "0"

    assert proton.create_service_template(name=svc)["serviceTemplate"]["name"] == svc
    assert proton.get_service_template(name=svc)["serviceTemplate"]["arn"].endswith(f":service-template/{svc}")
    assert svc in [t["name"] for t in proton.list_service_templates()["templates"]]
    assert proton.update_service_template(name=svc, description="web")["serviceTemplate"]["description"] == "web"
    sv = proton.create_service_template_version(
        templateName=svc, source=svc_source,
        compatibleEnvironmentTemplates=[{"templateName": env, "majorVersion": "1"}],
        supportedComponentSources=["DIRECTLY_DEFINED"],
    )["serviceTemplateVersion"]
    assert sv["compatibleEnvironmentTemplates"] == [{"templateName": env, "majorVersion": "1"}]
    proton.get_waiter("service_template_version_registered").wait(
        templateName=svc, majorVersion="1", minorVersion="0", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    assert proton.get_service_template_version(
        templateName=svc, majorVersion="1", minorVersion="0")["serviceTemplateVersion"]["status"] == "DRAFT"
    assert len(proton.list_service_template_versions(templateName=svc)["templateVersions"]) == 1
    proton.update_service_template_version(templateName=svc, majorVersion="1", minorVersion="0", status="PUBLISHED")
    assert proton.get_service_template(name=svc)["serviceTemplate"]["recommendedVersion"] == "1.0"

    deleted = proton.delete_service_template_version(templateName=svc, majorVersion="1", minorVersion="0")
    assert deleted["serviceTemplateVersion"]["templateName"] == svc
    assert proton.delete_service_template(name=svc)["serviceTemplate"]["name"] == svc
    code, _, status = error_of(proton.get_service_template, name=svc)
    assert (code, status) == ("ResourceNotFoundException", 404)
    proton.delete_environment_template_version(templateName=env, majorVersion="1", minorVersion="0")
    assert proton.delete_environment_template(name=env)["environmentTemplate"]["name"] == env
    assert platform.kept_bundles(env) == [] and platform.kept_bundles(svc) == []


def test_every_public_sample_bundle_registers_as_draft(platform, proton):
    suffix = unique("s")
    envs = sample_env_folders()
    services = sample_service_folders()
    assert (len(envs), len(services)) == (6, 17)
    for folder in envs:
        name = f"{folder.name}-{suffix}"
        proton.create_environment_template(name=name)
        version = proton.create_environment_template_version(
            templateName=name, source=platform.upload(pack_folder(folder / "v1")))
        assert version["environmentTemplateVersion"]["status"] == "DRAFT", folder
    for folder in services:
        name = f"{folder.name}-{suffix}"
        compatible = []
        for line in (folder / "v1" / ".compatible-envs").read_text().split():
            env_name, major = line.split(":")
            compatible.append({"templateName": f"{env_name}-{suffix}", "majorVersion": major})
        proton.create_service_template(name=name)
        version = proton.create_service_template_version(
            templateName=name, source=platform.upload(pack_folder(folder / "v1")),
            compatibleEnvironmentTemplates=compatible)
        assert version["serviceTemplateVersion"]["status"] == "DRAFT", folder
        assert version["serviceTemplateVersion"]["compatibleEnvironmentTemplates"] == compatible


def test_listings_page_through_the_cli_and_boto3_paginators(platform, proton):
    prefix = unique("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        proton.create_service_template(name=name)
    pages = list(proton.get_paginator("list_service_templates").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 3 and all(len(p["templates"]) <= 2 for p in pages)
    found = [t["name"] for p in pages for t in p["templates"] if t["name"].startswith(prefix)]
    assert found == names
    # The CLI follows nextToken by itself.
    listed = platform.cli_json("proton", "list-service-templates", "--page-size", "2")
    assert [t["name"] for t in listed["templates"] if t["name"].startswith(prefix)] == names

    env = unique("env")
    proton.create_environment_template(name=env)
    for _ in range(3):
        proton.create_environment_template_version(
            templateName=env, source=platform.upload(pack_folder(SAMPLES / "environment-templates/vpc-env/v1")))
    versions = [
        (v["majorVersion"], v["minorVersion"])
        for page in proton.get_paginator("list_environment_template_versions").paginate(
            templateName=env, PaginationConfig={"PageSize": 2})
        for v in page["templateVersions"]
    ]
    assert versions == [("1", "0"), ("2", "0"), ("3", "0")]


@pytest.mark.parametrize("call,kwargs,code,fragment", [
    ("create_environment_template", {"name": "has space"}, "ValidationException", "name:"),
    ("create_environment_template", {"name": "-x"}, "ValidationException", "name:"),
    ("create_environment_template", {"name": "x" * 101}, "ValidationException", "name: must be 1 to 100"),
    ("create_environment_template", {"name": 42}, "SerializationException", "name: invalid type"),
    ("create_environment_template", {"name": "ok", "provisioning": "SELF"}, "ValidationException", "provisioning: unknown variant"),
    ("create_environment_template", {"name": "ok", "description": "d" * 501}, "ValidationException", "description:"),
    ("get_environment_template_version", {"templateName": "t", "majorVersion": "01", "minorVersion": "0"}, "ValidationException", "majorVersion:"),
    ("list_environment_templates", {"maxResults": 500}, "ValidationException", "maxResults"),
    ("list_environment_templates", {"nextToken": "Zm9v"}, "ValidationException", "nextToken"),
    ("update_environment_template_version", {"templateName": "t", "majorVersion": "1", "minorVersion": "0", "status": "LIVE"}, "ValidationException", "status: unknown variant"),
    ("get_environment_template", {"name": "does-not-exist"}, "ResourceNotFoundException", "does-not-exist does not exist"),
])
def test_bad_input_gets_the_right_proton_error_and_writes_nothing(raw_proton, call, kwargs, code, fragment):
    before = raw_proton.list_environment_templates()["templates"]
    got, message, status = error_of(getattr(raw_proton, call), **kwargs)
    assert got == code and fragment in message, message
    assert status == {"ValidationException": 400, "SerializationException": 400, "ResourceNotFoundException": 404}[code]
    assert raw_proton.list_environment_templates()["templates"] == before


def test_malformed_json_and_unknown_targets_answer_like_aws(platform, proton):
    post = platform.post

    status, body = post("AwsProton20200720.CreateEnvironmentTemplate", "{\"name\": ")
    assert status == 400 and body["__type"] == "SerializationException" and "not valid JSON" in body["message"]
    status, body = post("AwsProton20200720.BrewCoffee", "{}")
    assert status == 400 and body["__type"] == "UnknownOperationException"
    code, message, status = error_of(proton.list_repositories)
    assert (code, status) == ("NotImplementedException", 501) and "ListRepositories" in message


def hostile_bundles():
    huge_schema = ENV_SCHEMA + b"#" * (50 * 1024)
    bomb = b"schema:\n  format: {openapi: '3.0.0'}\n  environment_input_type: In\n  types:\n    In: {type: object}\n"
    bomb += b"a: &a [x,x,x,x,x,x,x,x,x]\n" + b"".join(
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n".encode() for p, n in zip("abcdefgh", "bcdefghi"))
    good = [("infrastructure/manifest.yaml", ENV_MANIFEST, FILE), ("infrastructure/cloudformation.yaml", b"Resources: {}", FILE)]
    return {
        "not gzip": (b"PK\x03\x04 this is a zip", "not a gzip-compressed tar archive"),
        "parent path": (pack_entries([("schema/schema.yaml", ENV_SCHEMA, FILE), ("../../evil", b"x", FILE)]), "climbs out"),
        "absolute path": (pack_entries([("/etc/cron.d/evil", b"x", FILE)]), "absolute path"),
        "symlink": (pack_entries([("schema/schema.yaml", None, tarfile.SYMTYPE)]), "is a link"),
        "oversized file": (pack_entries([("schema/schema.yaml", huge_schema, FILE)]), "schema/schema.yaml: the file is"),
        "schema not yaml": (pack_entries([("schema/schema.yaml", b"schema: [unclosed", FILE), *good]), "schema/schema.yaml: not a valid schema"),
        "no input type": (pack_entries([("schema/schema.yaml", b"schema:\n  format: {openapi: '3.0.0'}\n  types: {}\n", FILE), *good]), "environment_input_type is missing"),
        "yaml bomb": (pack_entries([("schema/schema.yaml", bomb, FILE), *good]), "repetition limit"),
        "no infrastructure": (pack_entries([("schema/schema.yaml", ENV_SCHEMA, FILE)]), "infrastructure/ is missing"),
        "over 5 MB": (b"\x1f\x8b" + os.urandom(5 * 1024 * 1024 + 10), "at most 5242880 bytes"),
    }


@pytest.mark.parametrize("case", list(hostile_bundles()))
def test_a_hostile_or_broken_bundle_is_refused_and_leaves_nothing(platform, proton, case):
    data, fragment = hostile_bundles()[case]
    name = unique("bad")
    proton.create_environment_template(name=name)
    code, message, status = error_of(
        proton.create_environment_template_version, templateName=name, source=platform.upload(data))
    assert (code, status) == ("ValidationException", 400)
    assert fragment in message, message
    assert proton.list_environment_template_versions(templateName=name)["templateVersions"] == []
    assert platform.kept_bundles(name) == []


def test_a_missing_bundle_is_named_in_the_error(platform, proton):
    name = unique("missing")
    proton.create_environment_template(name=name)
    code, message, _ = error_of(proton.create_environment_template_version, templateName=name,
                                source={"s3": {"bucket": platform.bucket, "key": "no/such.tar.gz"}})
    assert code == "ValidationException" and f"s3://{platform.bucket}/no/such.tar.gz" in message


def test_the_waiter_reports_a_registered_version_at_once(platform, proton):
    name = unique("wait")
    proton.create_environment_template(name=name)
    with pytest.raises(WaiterError):
        proton.get_waiter("environment_template_version_registered").wait(
            templateName=name, majorVersion="1", minorVersion="0", WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    proton.create_environment_template_version(
        templateName=name, source=platform.upload(pack_folder(SAMPLES / "environment-templates/vpc-env/v1")))
    proton.get_waiter("environment_template_version_registered").wait(
        templateName=name, majorVersion="1", minorVersion="0", WaiterConfig={"Delay": 1, "MaxAttempts": 2})


def test_a_client_token_makes_version_creation_safe_to_retry(platform, proton):
    name = unique("token")
    proton.create_environment_template(name=name)
    source = platform.upload(pack_folder(SAMPLES / "environment-templates/vpc-env/v1"))
    first = proton.create_environment_template_version(templateName=name, source=source, clientToken="retry-1")
    again = proton.create_environment_template_version(templateName=name, source=source, clientToken="retry-1")
    assert first["environmentTemplateVersion"] == again["environmentTemplateVersion"]
    code, message, _ = error_of(proton.create_environment_template_version, templateName=name, source=source,
                                clientToken="retry-1", description="different")
    assert code == "ValidationException" and "clientToken" in message
    assert len(proton.list_environment_template_versions(templateName=name)["templateVersions"]) == 1
    assert len(platform.kept_bundles(name)) == 1


def test_a_create_retried_after_a_change_conflicts(proton):
    name = unique("retry")
    proton.create_service_template(name=name, description="a")
    assert proton.create_service_template(name=name, description="a")["serviceTemplate"]["name"] == name
    code, _, status = error_of(proton.create_service_template, name=name, description="b")
    assert (code, status) == ("ConflictException", 409)


def test_concurrent_version_creations_never_lose_or_duplicate_a_version(platform, proton):
    name = unique("race")
    proton.create_environment_template(name=name)
    source = platform.upload(pack_folder(SAMPLES / "environment-templates/vpc-env/v1"))
    barrier = threading.Barrier(4)
    outcomes = []

    def create():
        client = platform.proton()
        barrier.wait()
        try:
            v = client.create_environment_template_version(templateName=name, source=source)
            outcomes.append(("ok", v["environmentTemplateVersion"]["majorVersion"]))
        except ClientError as error:
            outcomes.append(("error", error.response["Error"]["Code"]))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = sorted(major for kind, major in outcomes if kind == "ok")
    lost = [code for kind, code in outcomes if kind == "error"]
    assert set(lost) <= {"ConflictException"}, outcomes
    assert len(won) == len(set(won)) >= 1, outcomes
    listed = proton.list_environment_template_versions(templateName=name)["templateVersions"]
    assert sorted(v["majorVersion"] for v in listed) == won
    template = proton.get_environment_template(name=name)["environmentTemplate"]
    assert template["name"] == name


def test_a_minor_that_breaks_its_schema_is_refused(platform, proton):
    name = unique("minor")
    proton.create_environment_template(name=name)
    proton.create_environment_template_version(
        templateName=name, source=platform.upload(pack_folder(SAMPLES / "environment-templates/vpc-env/v1")))
    broken = ENV_SCHEMA.replace(b"vpc_cidr:", b"cidr_block:")
    data = pack_entries([("schema/schema.yaml", broken, FILE),
                         ("infrastructure/manifest.yaml", ENV_MANIFEST, FILE),
                         ("infrastructure/cloudformation.yaml", b"Resources: {}", FILE)])
    code, message, _ = error_of(proton.create_environment_template_version, templateName=name,
                                majorVersion="1", source=platform.upload(data))
    assert code == "ValidationException"
    assert 'input "vpc_cidr" was removed' in message and "new major version" in message
    v = proton.create_environment_template_version(templateName=name, source=platform.upload(data))
    assert v["environmentTemplateVersion"]["majorVersion"] == "2"


def test_versions_in_the_recommended_position_are_deleted_last(platform, proton):
    name = unique("del")
    proton.create_environment_template(name=name)
    source = platform.upload(pack_folder(SAMPLES / "environment-templates/vpc-env/v1"))
    proton.create_environment_template_version(templateName=name, source=source)
    proton.create_environment_template_version(templateName=name, source=source, majorVersion="1")
    for minor in ("0", "1"):
        proton.update_environment_template_version(templateName=name, majorVersion="1", minorVersion=minor, status="PUBLISHED")
    code, message, status = error_of(proton.delete_environment_template, name=name)
    assert (code, status) == ("ConflictException", 409) and "still has versions" in message
    code, message, _ = error_of(proton.delete_environment_template_version, templateName=name, majorVersion="1", minorVersion="1")
    assert code == "ConflictException" and "recommended" in message
    proton.delete_environment_template_version(templateName=name, majorVersion="1", minorVersion="0")
    proton.delete_environment_template_version(templateName=name, majorVersion="1", minorVersion="1")
    proton.delete_environment_template(name=name)


def test_account_settings_name_the_pipeline_role_with_the_stock_cli(platform):
    before = platform.cli_json("proton", "get-account-settings")["accountSettings"]
    assert before["pipelineServiceRoleArn"].endswith(":role/paved-pipeline"), before
    role = "arn:aws:iam::123456789012:role/proton-components"
    try:
        got = platform.cli_json("proton", "update-account-settings", "--pipeline-service-role-arn", role)
        assert got["accountSettings"]["pipelineServiceRoleArn"] == role
        assert platform.cli_json("proton", "get-account-settings")["accountSettings"]["pipelineServiceRoleArn"] == role
        refused = platform.cli("proton", "update-account-settings", "--pipeline-service-role-arn", role,
                               check=False, profile="paved-developer")
        assert refused.returncode != 0 and "AccessDeniedException" in refused.stderr, refused.stderr
    finally:
        platform.cli("proton", "update-account-settings", "--pipeline-service-role-arn", "")
    after = platform.cli_json("proton", "get-account-settings")["accountSettings"]
    assert after == before
