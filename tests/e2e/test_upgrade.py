"""The fleet on `paved dev`, as a platform team runs it with the stock CLI: a new minor of the
backend Fargate sample, previewed across two environments, upgraded in two waves with an
approval between them (one execution of the upgrade state machine, its events on the bus);
then a minor that breaks in prod halts its upgrade after the first wave, a target is rolled
back to the deployment before it, and a resource changed behind paved's back is reported as
drift."""

import json
import shutil
import time

from conftest import SAMPLES, pack_folder, unique
from test_import import paved
from test_environments import aws_client
from test_services import CONNECTION, fargate_environments, publish

SAMPLE = SAMPLES / "service-templates/backend-fargate-svc"
MARKER = (
    "Resources:\n"
    "  ReleaseMarker:\n"
    "    Type: AWS::SSM::Parameter\n"
    "    Properties:\n"
    "      Type: String\n"
    "      Name: '/paved/{{service.name}}/{{service_instance.name}}/release'\n"
    "      Value: '{{ RELEASE }}'\n"
)


def minor(tmp_path, release, extra=""):
    """The sample with a release marker (and `extra` Jinja) in its instance template."""
    folder = tmp_path / f"v{release}"
    shutil.copytree(SAMPLE / "v1", folder)
    template = folder / "instance_infrastructure/cloudformation.yaml"
    text = template.read_text()
    template.write_text(text.replace("Resources:\n", MARKER.replace("{{ RELEASE }}", release) + extra, 1))
    return pack_folder(folder)


def wait_upgrade(platform, upgrade_id, statuses, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = json.loads(paved(platform, "upgrade", "status", upgrade_id, "--json").stdout)
        if answer["status"] in statuses:
            return answer
        time.sleep(1)
    raise AssertionError(f"upgrade {upgrade_id} never reached {statuses}: {answer}")


def fleet_events(platform):
    """A queue that receives paved's fleet events (source paved.fleet) through a rule."""
    events, sqs = aws_client(platform, "events"), aws_client(platform, "sqs")
    queue = sqs.create_queue(QueueName=unique("fleet-events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = unique("fleet")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["paved.fleet"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])

    def received():
        messages = []
        for _ in range(3):
            batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            messages += [json.loads(m["Body"]) for m in batch]
        return messages
    return received


def test_two_waves_with_an_approval_then_a_failed_wave_halts_and_a_rollback(platform, proton, tmp_path):
    received = fleet_events(platform)
    dev, prod = unique("up-dev"), unique("up-prod")
    env_template = fargate_environments(platform, proton, [dev, prod])
    template, service = unique("backend-up"), unique("api")
    publish(proton, platform, "service", template, SAMPLE / "v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    spec = (SAMPLE / "spec/spec.yaml").read_text()
    one = spec.replace("backend-fargate-svc-prod", "one").replace("fargate-env-prod", dev)
    two_entry = one[one.index("  - name: one"):].replace("name: one", "name: two").replace(dev, prod)
    spec = one.rstrip("\n") + "\n" + two_entry
    platform.cli("proton", "create-service", "--name", service, "--template-name", template,
                 "--template-major-version", "1", "--repository-connection-arn", CONNECTION,
                 "--repository-id", "acme/api", "--branch-name", "main", "--spec", spec)
    platform.cli("proton", "wait", "service-created", "--name", service)

    def publish_minor(bundle, number):
        proton.create_service_template_version(
            templateName=template, majorVersion="1", source=platform.upload(bundle),
            compatibleEnvironmentTemplates=[{"templateName": env_template, "majorVersion": "1"}])
        proton.update_service_template_version(templateName=template, majorVersion="1", minorVersion=number,
                                               status="PUBLISHED")

    publish_minor(minor(tmp_path, "1.1"), "1")

    # The preview: each instance rendered and planned, nothing applied.
    preview = json.loads(paved(platform, "preview", template, "--service", "--version", "1.1",
                               "--target", f"{service}/one", "--target", f"{service}/two", "--json").stdout)
    for target in preview["targets"]:
        assert (target["outcome"], target["fromVersion"], target["toVersion"]) == ("CHANGES", "1.0", "1.1"), target
        actions = [(a["action"], a["logicalId"]) for a in target["actions"]]
        assert ("ADD", "ReleaseMarker") in actions, actions
        assert not [a for a in actions if a[0] in ("REPLACE", "REMOVE")], actions
        assert "+  ReleaseMarker:" in target["diff"], target["diff"]
    assert (preview["summary"]["add"], preview["summary"]["replace"]) == (2, 0)

    # Two waves, dev then prod, with an approval between them.
    started = json.loads(paved(platform, "upgrade", "start", template, "--service", "--version", "1.1",
                               "--wave", dev, "--wave", prod, "--approval", "--no-pipelines",
                               "--json").stdout)
    upgrade_id = started["upgradeId"]
    assert [w["name"] for w in started["waves"]] == [dev, prod]
    waiting = wait_upgrade(platform, upgrade_id, {"AWAITING_APPROVAL", "FAILED", "SUCCEEDED"})
    assert waiting["status"] == "AWAITING_APPROVAL", waiting
    instances = {i["name"]: i for i in proton.list_service_instances(serviceName=service)["serviceInstances"]}
    assert (instances["one"]["templateMinorVersion"], instances["two"]["templateMinorVersion"]) == ("1", "0")
    # A developer may not approve; the platform team may.
    status, refused = platform.post("Paved20261127.ApproveFleetUpgrade", json.dumps({"upgradeId": upgrade_id}),
                                    profile="paved-developer")
    assert status == 403 and refused["__type"].endswith("AccessDeniedException"), (status, refused)
    followed = paved(platform, "upgrade", "approve", upgrade_id, "--wait")
    assert "approved" in followed.stdout
    done = wait_upgrade(platform, upgrade_id, {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED", done
    assert done["waves"][1]["approvedBy"]["principal"].endswith("paved-platform"), done["waves"][1]
    assert [t["status"] for w in done["waves"] for t in w["targets"]] == ["SUCCEEDED", "SUCCEEDED"]
    # What a deployment rendered is read back as it was handed to CloudFormation.
    deployed = done["waves"][0]["targets"][0]["deploymentId"]
    rendered = paved(platform, "rendered", deployed).stdout
    assert "ReleaseMarker:" in rendered and f"/paved/{service}/one/release" in rendered, rendered
    ssm_value = lambda name: json.loads(platform.cli(  # noqa: E731
        "ssm", "get-parameter", "--name", f"/paved/{service}/{name}/release").stdout)["Parameter"]["Value"]
    assert (ssm_value("one"), ssm_value("two")) == ("1.1", "1.1")
    before = proton.get_service_instance(serviceName=service, name="one")["serviceInstance"]["lastSucceededDeploymentId"]
    # Its events on the bus, and its one execution in the Step Functions console.
    heard = [m["detail"]["status"] for m in received() if m["detail"].get("upgradeId") == upgrade_id]
    assert heard == ["RUNNING", "AWAITING_APPROVAL", "RUNNING", "SUCCEEDED"], heard
    sfn = aws_client(platform, "stepfunctions")
    execution = f"arn:aws:states:us-east-1:123456789012:execution:paved-upgrade:{upgrade_id}"
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
    entered = [e["stateEnteredEventDetails"]["name"] for e in sfn.get_execution_history(executionArn=execution)["events"]
               if "stateEnteredEventDetails" in e]
    assert "Wait for an approval or a resume" in entered and entered[-1] == "Upgrade ended", entered

    # 1.2 breaks in prod only: the first wave goes through, the second halts the upgrade.
    broken = "{% if environment.name == '" + prod + "' %}{{ service_instance.inputs.missing.deeper }}{% endif %}\n"
    publish_minor(minor(tmp_path, "1.2", extra=broken), "2")
    started = json.loads(paved(platform, "upgrade", "start", template, "--service", "--version", "1.2",
                               "--wave", dev, "--wave", prod, "--no-pipelines", "--rollback-failed",
                               "--json").stdout)
    halted = paved(platform, "upgrade", "status", started["upgradeId"], "--wait", check=False)
    assert halted.returncode == 1, halted.stdout + halted.stderr
    record = wait_upgrade(platform, started["upgradeId"], {"FAILED"})
    assert "halted: 1 targets failed" in record["statusMessage"], record
    dev_target, prod_target = record["waves"][0]["targets"][0], record["waves"][1]["targets"][0]
    assert dev_target["status"] == "SUCCEEDED" and prod_target["status"] == "FAILED", record
    assert "missing" in prod_target["message"], prod_target
    assert ssm_value("one") == "1.2" and ssm_value("two") == "1.1"

    # The dev instance goes back to what it ran before the broken minor.
    paved(platform, "rollback", before)
    platform.cli("proton", "wait", "service-instance-deployed", "--name", "one", "--service-name", service)
    got = proton.get_service_instance(serviceName=service, name="one")["serviceInstance"]
    assert (got["templateMinorVersion"], got["deploymentStatus"]) == ("1", "SUCCEEDED"), got
    assert ssm_value("one") == "1.1"

    # Drift: prod's marker changed behind paved's back is found, recorded and announced.
    platform.cli("ssm", "put-parameter", "--name", f"/paved/{service}/two/release", "--value", "by hand",
                 "--type", "String", "--overwrite")
    found = json.loads(paved(platform, "drift", template, "--service", "--json").stdout)["drifts"]
    by_stack = {d["stackName"]: d for d in found}
    two = by_stack[f"paved-instance-{service}-two"]
    assert two["status"] == "DRIFTED", found
    assert two["resources"] == [{"logicalId": "ReleaseMarker", "resourceType": "AWS::SSM::Parameter",
                                 "status": "MODIFIED", "differences": ["/Value: 1.1 -> by hand"]}], two
    assert by_stack[f"paved-instance-{service}-one"]["status"] == "IN_SYNC", found
    shown = paved(platform, "drift", template, "--service").stdout
    assert "DRIFTED" in shown and "/Value: 1.1 -> by hand" in shown, shown
    view = json.loads(paved(platform, "fleet", template, "--service", "--json").stdout)
    drift = {t["name"]: t.get("drift", {}).get("status") for t in view["targets"] if t["kind"] == "SERVICE_INSTANCE"}
    assert drift == {"one": "IN_SYNC", "two": "DRIFTED"}, view
    announced = [m for m in received() if m["detail-type"] == "paved Drift Detected"
                 and m["detail"]["templateName"] == template]
    assert [m["detail"]["stackName"] for m in announced] == [f"paved-instance-{service}-two"], announced

    listed = json.loads(paved(platform, "upgrade", "list", "--json").stdout)["upgrades"]
    mine = [u for u in listed if u["templateName"] == template]
    assert [u["status"] for u in mine] == ["FAILED", "SUCCEEDED"], mine
