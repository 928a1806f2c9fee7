"""`paved access check`: the API's own Cedar evaluation, offline, on a document a platform team
is about to put: the default personas, and a policy narrowed by template and environment tag."""

import json
import os
import subprocess

from conftest import PAVED_BIN

ACCOUNT = "arn:aws:proton:us-east-1:123456789012"
DEV = "arn:aws:iam::123456789012:user/dev-ana"
NARROWED = """
@id("platform-all")
permit (principal in Paved::Group::"platform", action, resource);

@id("developer-reads")
permit (principal in Paved::Group::"developers", action in Paved::Action::"read", resource);

@id("developer-services")
permit (principal in Paved::Group::"developers", action == Paved::Action::"CreateService", resource)
when { context has "proton:ServiceTemplate" && context["proton:ServiceTemplate"] like "*:service-template/web" };

@id("dev-only")
forbid (principal in Paved::Group::"developers", action, resource is Paved::ServiceInstance)
unless { resource.environment.hasTag("stage") && resource.environment.getTag("stage") == "dev" };
"""


def check(*args, env=None):
    result = subprocess.run([str(PAVED_BIN), "access", "check", *args], capture_output=True, text=True,
                            env=dict(os.environ, **(env or {})))
    assert result.returncode in (0, 1), result.stderr
    return result


def test_the_default_personas_are_decided_offline_with_exit_status_and_reasons():
    env = {"PAVED_DEVELOPER_PRINCIPALS": "arn:aws:iam::123456789012:user/dev-*",
           "PAVED_READONLY_PRINCIPALS": "arn:aws:iam::123456789012:role/auditor"}
    allowed = check("--principal", DEV, "--action", "CreateService", "--action", "UpdateServicePipeline", env=env)
    assert allowed.returncode == 0, allowed.stdout
    assert "ALLOW  CreateService" in allowed.stdout
    refused = check("--principal", DEV, "--action", "CreateEnvironment", "--action", "TagResource", env=env)
    assert refused.returncode == 1
    assert "DENY   CreateEnvironment" in refused.stdout and "no policy allows it" in refused.stdout
    # An assumed-role session is its role; read-only may read only.
    session = "arn:aws:sts::123456789012:assumed-role/auditor/jo"
    listing = check("--principal", session, "--json", env=env)
    decisions = [json.loads(line) for line in listing.stdout.splitlines()]
    allowed = {d["action"] for d in decisions if d["allowed"]}
    assert allowed and all(a.startswith(("Get", "List")) for a in allowed), allowed
    assert "ListEnvironments" in allowed and "GetServicePipelineState" in allowed


def test_a_narrowed_policy_is_tried_before_it_is_put(tmp_path):
    document = tmp_path / "access.json"
    document.write_text(json.dumps({"accessPolicy": {
        "version": 3,
        "groups": [{"name": "platform", "principals": ["arn:aws:iam::123456789012:role/platform"]},
                   {"name": "developers", "principals": ["arn:aws:iam::123456789012:user/dev-*"]}],
        "policies": NARROWED,
    }}))
    common = ("--policy", str(document), "--principal", DEV)
    web = check(*common, "--action", "CreateService", "--resource", f"{ACCOUNT}:service/shop",
                "--template", f"{ACCOUNT}:service-template/web")
    assert web.returncode == 0, web.stdout
    assert "allowed by developer-services" in web.stdout
    other = check(*common, "--action", "CreateService", "--resource", f"{ACCOUNT}:service/shop",
                  "--template", f"{ACCOUNT}:service-template/batch")
    assert other.returncode == 1
    instance = (*common, "--action", "GetServiceInstance", "--resource",
                f"{ACCOUNT}:service/shop/service-instance/a", "--environment", f"{ACCOUNT}:environment/prod")
    assert check(*instance, "--environment-tag", "stage=dev").returncode == 0
    prod = check(*instance, "--environment-tag", "stage=prod")
    assert prod.returncode == 1 and "denied by dev-only" in prod.stdout, prod.stdout
    # A document that does not compile is refused with the reason, as PutAccessPolicy would.
    document.write_text(json.dumps({"groups": [], "policies": "permit (principal, action == Paved::Action::\"Nope\", resource);"}))
    broken = subprocess.run([str(PAVED_BIN), "access", "check", "--policy", str(document), "--principal", DEV],
                            capture_output=True, text=True)
    assert broken.returncode != 0 and "Nope" in broken.stderr, broken.stderr


def test_the_roles_pipeline_stacks_make_for_codebuild_are_pipelines_by_default():
    build = "arn:aws:sts::123456789012:assumed-role/paved-pipeline-web-PublishRole-1A2B3C/AWSCodeBuild-9f"
    allowed = check("--principal", build, "--action", "UpdateServiceInstance", "--action", "GetService")
    assert allowed.returncode == 0, allowed.stdout
    refused = check("--principal", build, "--action", "CreateEnvironment")
    assert refused.returncode == 1, refused.stdout
    stranger = check("--principal", "arn:aws:sts::123456789012:assumed-role/other-build/x", "--action", "GetService")
    assert stranger.returncode == 1, stranger.stdout
