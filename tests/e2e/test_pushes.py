"""Pushes redeploy services, locally through the same EventBridge rules as in AWS: a push put
on the default bus (or a signed GitHub webhook delivery) starts the pipeline of the services
that track the pushed branch, as a Step Functions execution, under the coalescing policy."""

import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import pytest

from conftest import PAVED_BIN, SAMPLES, unique
from test_services import CONNECTION, fargate_environments, publish, service_spec, wait_for

WEBHOOK_SECRET = b"paved-local-webhook-secret"  # `paved dev`'s default


def commit(char):
    return char * 40


def aws(platform, service):
    return boto3.client(service, endpoint_url=platform.aws, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def pipeline_state(platform, service):
    status, body = platform.post("Paved20261127.GetServicePipelineState", json.dumps({"serviceName": service}))
    assert status == 200, body
    return body["pipelineState"]


def put_push(platform, repository, branch, sha):
    """A paved push event, put with the stock aws CLI as any Git host's hook could."""
    entry = {"Source": "paved.push", "DetailType": "Source Push",
             "Detail": json.dumps({"repositoryId": repository, "branchName": branch, "commitId": sha})}
    out = platform.cli_json("events", "put-events", "--entries", json.dumps([entry]))
    assert out["FailedEntryCount"] == 0, out


def redeploy_inputs(platform, service):
    """The inputs of the redeploy executions of one service."""
    sfn = aws(platform, "stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "paved-redeploy")
    inputs = []
    for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
        described = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
        if described["service"] == service:
            inputs.append((execution["name"], described))
    return inputs


def post_webhook(platform, body: bytes, signature=None, event="push"):
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    if signature:
        headers["X-Hub-Signature-256"] = signature
    request = urllib.request.Request(platform.api + "/webhooks/github", data=body, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=10)
        return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def signed(body: bytes, secret=WEBHOOK_SECRET):
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def github_push(repository, branch, sha):
    return json.dumps({"ref": f"refs/heads/{branch}", "after": sha, "deleted": False,
                       "repository": {"full_name": repository, "pushed_at": int(time.time())}}).encode()


@pytest.fixture(scope="module")
def web_service(platform, proton):
    env = unique("prod")
    env_template = fargate_environments(platform, proton, [env])
    template, service = unique("lb-svc"), unique("web")
    publish(proton, platform, "service", template, SAMPLES / "service-templates/load-balanced-fargate-svc/v1",
            compatible=[{"templateName": env_template, "majorVersion": "1"}])
    proton.create_service(name=service, templateName=template, templateMajorVersion="1",
                          spec=service_spec([(f"{service}-prod", env)]), repositoryConnectionArn=CONNECTION,
                          repositoryId="acme/web", branchName="main")
    platform.cli("proton", "wait", "service-created", "--name", service)
    return service


def last_commit(platform, service):
    last = pipeline_state(platform, service)["redeploys"].get("last")
    return last["commitId"] if last else None


def test_a_push_on_the_tracked_branch_starts_the_pipeline_and_others_do_not(platform, web_service):
    service = web_service
    put_push(platform, "acme/web", "main", commit("a"))
    wait_for(lambda: last_commit(platform, service) == commit("a"), timeout=60)
    state = pipeline_state(platform, service)
    last = state["redeploys"]["last"]
    assert last["status"] == "SUCCEEDED" and last["source"] == "paved", state
    # The pipeline ran: its execution is the one recorded against the service.
    assert last["pipelineExecutionId"] in [e["pipelineExecutionId"] for e in state["executions"]]
    # The redeploy is a Step Functions execution whose input carries the commit.
    runs = redeploy_inputs(platform, service)
    assert [(name[:17], run["push"]["commitId"]) for name, run in runs] == [("push-aaaaaaaaaaaa", commit("a"))]

    # Another branch, another repository: no redeploy of this service. A push on the tracked
    # branch after them shows they were all handled.
    put_push(platform, "acme/web", "develop", commit("b"))
    put_push(platform, "acme/other", "main", commit("c"))
    put_push(platform, "acme/web", "main", commit("d"))
    wait_for(lambda: last_commit(platform, service) == commit("d"), timeout=60)
    commits = sorted(run["push"]["commitId"] for _, run in redeploy_inputs(platform, service))
    assert commits == [commit("a"), commit("d")]
    # What moto cannot show (stage states) is said, not invented.
    assert "GetPipelineState" in pipeline_state(platform, service)["stagesUnavailable"]

    # The paved CLI reads the same state, signing as the read-only identity.
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=str(platform.credentials_file),
               AWS_CONFIG_FILE=str(platform.config_file), AWS_PROFILE="paved-readonly")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)
    shown = subprocess.run([str(PAVED_BIN), "pipeline-state", service, "--endpoint", platform.api],
                           capture_output=True, text=True, timeout=30, env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["redeploys"]["last"]["commitId"] == commit("d")


def test_two_quick_pushes_never_overlap_and_end_on_the_newest_commit(platform, web_service):
    service = web_service
    initial = pipeline_state(platform, service)
    before, coalesced = len(initial["executions"]), initial["redeploys"]["coalesced"]
    entries = [{"Source": "paved.push", "DetailType": "Source Push",
                "Detail": json.dumps({"repositoryId": "acme/web", "branchName": "main", "commitId": commit(c)})}
               for c in "ef"]
    platform.cli_json("events", "put-events", "--entries", json.dumps(entries))
    wait_for(lambda: last_commit(platform, service) == commit("f"), timeout=60)
    time.sleep(2)  # let a (wrongly) queued older run show itself
    state = pipeline_state(platform, service)
    assert state["redeploys"]["last"]["commitId"] == commit("f"), state
    assert "running" not in state["redeploys"] and "pending" not in state["redeploys"], state
    started = len(state["executions"]) - before
    # Either e ran and then f, or e was replaced or superseded by f before it ran (counted as
    # coalesced): one pipeline run per push at most, and every push accounted for.
    assert started + (state["redeploys"]["coalesced"] - coalesced) == 2, state


def test_the_github_webhook_takes_signed_pushes_only(platform, web_service):
    service = web_service
    body = github_push("acme/web", "main", commit("1"))
    for signature in (None, signed(body, b"not the secret"), "sha256=" + "0" * 64, "sha1=abc"):
        status, answer = post_webhook(platform, body, signature)
        assert status == 401, (signature, status, answer)
    # Nothing was written: the genuine delivery of the same body is accepted, once.
    status, answer = post_webhook(platform, body, signed(body))
    assert status == 202 and answer["accepted"] is True, answer
    wait_for(lambda: last_commit(platform, service) == commit("1"), timeout=60)
    assert pipeline_state(platform, service)["redeploys"]["last"]["source"] == "github"
    status, answer = post_webhook(platform, body, signed(body))
    assert status == 409, answer
    stale = json.dumps({"ref": "refs/heads/main", "after": commit("2"),
                        "repository": {"full_name": "acme/web", "pushed_at": int(time.time()) - 3600}}).encode()
    status, answer = post_webhook(platform, stale, signed(stale))
    assert status == 401 and "replay" in answer["message"], answer
    ping = b'{"zen": "Design for failure."}'
    status, answer = post_webhook(platform, ping, signed(ping), event="ping")
    assert status == 202 and answer["message"] == "pong"


def test_a_codecommit_reference_update_reaches_the_service_named_after_its_repository(platform, proton, web_service):
    template = proton.get_service(name=web_service)["service"]["templateName"]
    env = proton.list_service_instances(serviceName=web_service)["serviceInstances"][0]["environmentName"]
    service = unique("cc")
    proton.create_service(name=service, templateName=template, templateMajorVersion="1",
                          spec=service_spec([(f"{service}-prod", env)]), repositoryConnectionArn=CONNECTION,
                          repositoryId=f"{service}-repo", branchName="main")
    platform.cli("proton", "wait", "service-created", "--name", service)
    event = {"Source": "aws.codecommit", "DetailType": "CodeCommit Repository State Change",
             "Detail": json.dumps({"event": "referenceUpdated", "repositoryName": f"{service}-repo",
                                   "repositoryId": "8c4c6ab3-0000-4b1c-9b4a-000000000000",
                                   "referenceType": "branch", "referenceName": "main",
                                   "commitId": commit("c")})}
    out = platform.cli_json("events", "put-events", "--entries", json.dumps([event]))
    assert out["FailedEntryCount"] == 0, out
    wait_for(lambda: last_commit(platform, service) == commit("c"), timeout=60)
    assert pipeline_state(platform, service)["redeploys"]["last"]["source"] == "codecommit"
