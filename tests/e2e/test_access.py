"""Who may do what, with the stock aws CLI and the three local identities `paved dev` writes:
the developer persona does what Proton's developer policy allowed and is refused the rest with
nothing written; read-only reads; the platform engineer does all; signatures are checked."""

import json
import time

from conftest import SAMPLES, pack_folder, unique

ENV_SPEC = "proton: EnvironmentSpec\nspec:\n  vpc_cidr: 10.0.0.0/16\n"


def refused(result):
    assert result.returncode != 0
    assert "AccessDeniedException" in result.stderr, result.stderr
    return result.stderr


def test_each_persona_can_do_what_its_policy_allows_and_nothing_else(platform, tmp_path):
    env_template, svc_template = unique("fargate-env"), unique("fargate-svc")
    env = unique("dev")
    sample = SAMPLES / "environment-templates" / "fargate-env" / "v1"
    assert sample.is_dir(), sample
    bundle = platform.upload(pack_folder(sample))
    # The platform engineer publishes an environment template and runs an environment.
    platform.cli("proton", "create-environment-template", "--name", env_template)
    platform.cli("proton", "create-environment-template-version", "--template-name", env_template,
                 "--source", json.dumps(bundle))
    wait_registered(platform, "environment", env_template)
    platform.cli("proton", "update-environment-template-version", "--template-name", env_template,
                 "--major-version", "1", "--minor-version", "0", "--status", "PUBLISHED")
    spec = tmp_path / "env.yaml"
    spec.write_text(ENV_SPEC)
    platform.cli("proton", "create-environment", "--name", env, "--template-name", env_template,
                 "--template-major-version", "1", "--spec", f"file://{spec}",
                 "--proton-service-role-arn", "arn:aws:iam::123456789012:role/proton-service")

    # The developer reads, and is refused templates, environments, tags and components.
    dev = "paved-developer"
    listed = platform.cli_json("proton", "list-environments", profile=dev)
    assert env in [e["name"] for e in listed["environments"]]
    message = refused(platform.cli("proton", "create-environment-template", "--name", svc_template,
                                   check=False, profile=dev))
    assert f"user/paved-developer is not authorized to perform: proton:CreateEnvironmentTemplate" in message
    refused(platform.cli("proton", "delete-environment", "--name", env, check=False, profile=dev))
    refused(platform.cli("proton", "tag-resource", "--resource-arn",
                         f"arn:aws:proton:us-east-1:123456789012:environment/{env}",
                         "--tags", "key=a,value=b", check=False, profile=dev))
    refused(platform.cli("proton", "create-component", "--name", unique("c"), "--environment-name", env,
                         "--manifest", "x", "--template-file", "y", check=False, profile=dev))
    # Nothing was written by what was refused.
    names = [t["name"] for t in platform.cli_json("proton", "list-environment-templates")["templates"]]
    assert svc_template not in names
    assert platform.cli_json("proton", "get-environment", "--name", env)["environment"]["name"] == env

    # Read-only reads and writes nothing.
    ro = "paved-readonly"
    platform.cli_json("proton", "get-environment", "--name", env, profile=ro)
    refused(platform.cli("proton", "update-environment", "--name", env, "--deployment-type", "NONE",
                         "--description", "x", check=False, profile=ro))
    assert "description" not in platform.cli_json("proton", "get-environment", "--name", env)["environment"]


def wait_registered(platform, kind, template):
    for _ in range(100):
        versions = platform.cli_json("proton", f"list-{kind}-template-versions", "--template-name", template)
        listed = versions["templateVersions"]
        if listed and listed[0]["status"] == "DRAFT":
            return
        time.sleep(0.1)
    raise AssertionError(f"{template} did not register: {listed}")


def test_unsigned_forged_late_and_unknown_key_calls_are_refused_as_aws_refuses_them(platform):
    name = unique("never")
    body = json.dumps({"name": name})
    target = "AwsProton20200720.CreateEnvironmentTemplate"
    status, answer = platform.post(target, body, sign=False)
    assert (status, answer["__type"]) == (403, "MissingAuthenticationTokenException")
    platform.keys["forged"] = (platform.keys["paved-platform"][0], "not-the-secret")
    status, answer = platform.post(target, body, profile="forged")
    assert (status, answer["__type"]) == (403, "InvalidSignatureException")
    platform.keys["unknown"] = ("AKIAUNKNOWNKEY000001", "x")
    status, answer = platform.post(target, body, profile="unknown")
    assert (status, answer["__type"]) == (403, "UnrecognizedClientException")
    # Signed for execute-api (what API Gateway verifies in AWS) is as good as for proton.
    status, answer = platform.post("AwsProton20200720.ListEnvironmentTemplates", "{}", service="execute-api")
    assert status == 200, answer
    names = [t["name"] for t in platform.proton().list_environment_templates()["templates"]]
    assert name not in names


def test_a_group_by_principal_tag_matches_the_tags_iam_holds(platform):
    """Tags put on a local identity's IAM user (moto's IAM, as IAM in AWS) put it in a group."""
    def paved(operation, body, profile="paved-platform"):
        status, answer = platform.post(f"Paved20261127.{operation}", json.dumps(body), profile=profile)
        assert status == 200, answer
        return answer["accessPolicy"]

    before = paved("GetAccessPolicy", {})
    groups = before["groups"] + [{"name": "template-authors", "principalTags": {"team": "templates"}}]
    policies = before["policies"] + (
        '\n@id("authors-create-templates")\n'
        'permit (principal in Paved::Group::"template-authors", '
        'action == Paved::Action::"CreateEnvironmentTemplate", resource);\n')
    put = paved("PutAccessPolicy", {"groups": groups, "policies": policies, "expectedVersion": before["version"]})
    try:
        name = unique("authored")
        untagged = platform.cli("proton", "create-environment-template", "--name", name, check=False,
                                profile="paved-readonly")
        refused(untagged)
        platform.cli("iam", "tag-user", "--user-name", "paved-readonly", "--tags", "Key=team,Value=templates")
        platform.cli("proton", "create-environment-template", "--name", name, profile="paved-readonly")
        # The group grants what it grants and no more.
        refused(platform.cli("proton", "delete-environment-template", "--name", name, check=False,
                             profile="paved-readonly"))
    finally:
        platform.cli("iam", "untag-user", "--user-name", "paved-readonly", "--tag-keys", "team")
        paved("PutAccessPolicy", {"groups": before["groups"], "policies": before["policies"],
                                  "expectedVersion": put["version"]})
