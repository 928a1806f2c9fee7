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
