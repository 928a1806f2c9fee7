"""The fleet with `paved`: a template's targets with the version each runs and how far behind it
is, and a target rolled back to an earlier deployment, waited for with the stock CLI."""

import json

from conftest import unique
from test_import import paved
from test_paging import ENV_SCHEMA, FILE, MANIFEST, QUEUE, ROLE
from conftest import pack_entries


def test_a_template_fleet_and_a_rollback_to_the_previous_deployment(platform, proton):
    template, env = unique("fleet-env"), unique("fleet-dev")
    bundle = platform.upload(pack_entries([
        ("schema/schema.yaml", ENV_SCHEMA, FILE), ("infrastructure/manifest.yaml", MANIFEST, FILE),
        ("infrastructure/cloudformation.yaml", QUEUE, FILE)]))
    proton.create_environment_template(name=template)
    for minor in ("0", "1"):
        major = {"majorVersion": "1"} if minor == "1" else {}
        proton.create_environment_template_version(templateName=template, source=bundle, **major)
        proton.update_environment_template_version(templateName=template, majorVersion="1", minorVersion=minor,
                                                   status="PUBLISHED")
        if minor == "0":
            proton.create_environment(name=env, templateName=template, templateMajorVersion="1",
                                      templateMinorVersion="0", protonServiceRoleArn=ROLE,
                                      spec="proton: EnvironmentSpec\nspec:\n  size: small\n")
            platform.cli("proton", "wait", "environment-deployed", "--name", env)
    first = proton.get_environment(name=env)["environment"]["lastSucceededDeploymentId"]
    proton.update_environment(name=env, deploymentType="MINOR_VERSION",
                              spec="proton: EnvironmentSpec\nspec:\n  size: large\n")
    platform.cli("proton", "wait", "environment-deployed", "--name", env)

    view = json.loads(paved(platform, "fleet", template, "--json").stdout)
    assert view["template"]["recommendedVersion"] == "1.1"
    assert [(t["name"], t["version"], t["staleness"]) for t in view["targets"]] == [(env, "1.1", "UP_TO_DATE")]
    shown = paved(platform, "fleet", template).stdout
    assert env in shown and "up to date" in shown, shown

    paved(platform, "rollback", first)
    platform.cli("proton", "wait", "environment-deployed", "--name", env)
    got = proton.get_environment(name=env)["environment"]
    assert (got["templateMinorVersion"], got["deploymentStatus"]) == ("0", "SUCCEEDED"), got
    assert "size: small" in got["spec"]
    outputs = {o["key"]: o["valueString"] for o in proton.list_environment_outputs(environmentName=env)["outputs"]}
    assert outputs["Size"] == "small"
    view = json.loads(paved(platform, "fleet", template, "--json").stdout)
    assert view["targets"][0]["staleness"] == "BEHIND_MINOR"
    # A deployment that does not exist is refused, and says so.
    refused = paved(platform, "rollback", "no-such-deployment", check=False)
    assert refused.returncode == 1 and "ResourceNotFoundException" in refused.stderr, refused.stderr


def test_a_preview_plans_each_target_in_the_local_aws_and_leaves_nothing_behind(platform, proton):
    import boto3
    template, envs = unique("preview-env"), [unique("pv-dev"), unique("pv-prod")]
    bundle = platform.upload(pack_entries([
        ("schema/schema.yaml", ENV_SCHEMA, FILE), ("infrastructure/manifest.yaml", MANIFEST, FILE),
        ("infrastructure/cloudformation.yaml", QUEUE, FILE)]))
    renamed = QUEUE.replace(b"    Type: AWS::SQS::Queue\n",
                            b"    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: '{{ environment.name }}-work'\n"
                            b"  Topic:\n    Type: AWS::SNS::Topic\n")
    newer = platform.upload(pack_entries([
        ("schema/schema.yaml", ENV_SCHEMA, FILE), ("infrastructure/manifest.yaml", MANIFEST, FILE),
        ("infrastructure/cloudformation.yaml", renamed, FILE)]))
    proton.create_environment_template(name=template)
    proton.create_environment_template_version(templateName=template, source=bundle)
    proton.update_environment_template_version(templateName=template, majorVersion="1", minorVersion="0", status="PUBLISHED")
    for env in envs:
        proton.create_environment(name=env, templateName=template, templateMajorVersion="1",
                                  protonServiceRoleArn=ROLE, spec="proton: EnvironmentSpec\nspec: {}\n")
    for env in envs:
        platform.cli("proton", "wait", "environment-deployed", "--name", env)
    proton.create_environment_template_version(templateName=template, majorVersion="1", source=newer)
    proton.update_environment_template_version(templateName=template, majorVersion="1", minorVersion="1", status="PUBLISHED")
    cfn = boto3.client("cloudformation", endpoint_url=platform.aws, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    before = {env: cfn.get_template(StackName=f"paved-environment-{env}")["TemplateBody"] for env in envs}

    answer = json.loads(paved(platform, "preview", template, "--version", "1.1", "--json").stdout)
    targets = {t["name"]: t for t in answer["targets"]}
    assert set(targets) == set(envs)
    for env in envs:
        t = targets[env]
        assert (t["outcome"], t["fromVersion"], t["toVersion"]) == ("CHANGES", "1.0", "1.1"), t
        assert sorted((a["action"], a["logicalId"]) for a in t["actions"]) == [("ADD", "Topic"), ("REPLACE", "Queue")]
        assert f"+      QueueName: '{env}-work'" in t["diff"], t["diff"]
    assert answer["summary"]["replaced"] == {"AWS::SQS::Queue": 2}
    shown = paved(platform, "preview", template, "--version", "1.1", "--target", envs[0]).stdout
    assert "this change replaces 1 AWS::SQS::Queue" in shown, shown
    # Nothing applied; no plan left on the stacks; the environments still run 1.0.
    for env in envs:
        stack = f"paved-environment-{env}"
        assert cfn.get_template(StackName=stack)["TemplateBody"] == before[env]
        # (moto lists every change set of the account, executed ones too: look for previews')
        left = [c["ChangeSetName"] for c in cfn.list_change_sets(StackName=stack)["Summaries"]
                if c["ChangeSetName"].startswith("paved-preview-")]
        assert left == [], left
        assert proton.get_environment(name=env)["environment"]["templateMinorVersion"] == "0"
