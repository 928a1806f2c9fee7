"""The local platform itself and the infrastructure template."""

import socket
import subprocess

from conftest import REPO, VENV, Platform


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stopping_paved_dev_stops_everything_it_started(tmp_path):
    second = Platform(tmp_path)
    assert any("Proton API:" in line for line in second.banner)
    assert any(f"local AWS:     {second.aws}" in line for line in second.banner)
    assert port_open(second.port) and port_open(second.aws_port)
    second.stop()
    assert second.process.returncode == 0
    assert not port_open(second.port)
    assert not port_open(second.aws_port), "moto outlived paved dev"


def test_the_sam_template_passes_cfn_lint():
    result = subprocess.run([str(VENV / "bin" / "cfn-lint"), str(REPO / "infra" / "template.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_deployed_api_uses_iam_authorization_access_logs_and_log_retention():
    from cfnlint.decode import decode
    template, errors = decode(str(REPO / "infra" / "template.yaml"))
    assert not errors, errors
    resources = template["Resources"]
    auth = resources["ProtonApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM" and auth["InvokeRole"] == "NONE"
    assert "AccessLogSetting" in resources["ProtonApi"]["Properties"]
    groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 5 and all("RetentionInDays" in g["Properties"] for g in groups)
    assert "Default" not in template["Parameters"]["PlatformPrincipals"]
    assert template["Parameters"]["ProtonServiceRolePattern"]["Default"] != "*"


def test_the_tasks_function_may_do_what_its_steps_and_its_sweep_ask_of_aws():
    """moto enforces no IAM: what the function's role allows is read from the template for the
    calls the kernel makes beyond its steps' own (index queries, execution states)."""
    import json as _json
    from cfnlint.decode import decode
    template, errors = decode(str(REPO / "infra" / "template.yaml"))
    assert not errors, errors
    tasks = template["Resources"]["TasksFunction"]["Properties"]
    schedule = tasks["Events"]["Sweep"]
    assert schedule["Type"] == "Schedule" and _json.loads(schedule["Properties"]["Input"]) == {"task": "sweep"}
    # Inline statements; a managed policy (drift detection's ReadOnlyAccess) is an Fn::If.
    def inline(policies):
        return [s for policy in policies if "Statement" in policy for s in policy["Statement"]]
    statements = inline(tasks["Policies"])

    def allows(action, fragment):
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if action in actions and any(fragment in _json.dumps(r) for r in resources):
                return True
        return False

    assert allows("dynamodb:Query", "/index/*")
    assert allows("states:DescribeExecution", "-deploy:*") and allows("states:DescribeExecution", "-delete:*")
    api = template["Resources"]["ApiFunction"]["Properties"]
    api_statements = inline(api["Policies"])
    assert any("iam:ListRoleTags" in s["Action"] and "iam:GetRole" in s["Action"] for s in api_statements)
    # Adoption: the API lists every stack and reads Proton's; the steps change adopted stacks,
    # which keep their AWSProton-* names, and the stacks of the configured prefix.
    assert any(s["Action"] == "cloudformation:DescribeStacks" and s["Resource"] == "*" for s in api_statements)
    assert any("cloudformation:ListStackResources" in s["Action"] and "stack/AWSProton-*/*" in _json.dumps(s["Resource"])
               for s in api_statements)
    assert allows("cloudformation:ExecuteChangeSet", "stack/AWSProton-*/*")
    assert allows("cloudformation:ExecuteChangeSet", "stack/${StackNamePrefix}instance-*/*")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PAVED_STACK_PREFIX"] == {"Ref": "StackNamePrefix"}
    # Fleet: upgrades start deployments and resume their own waits; drift is detected on
    # paved's and Proton's stacks, hourly, with read access to the resources when enabled.
    assert allows("states:StartExecution", "-deploy")
    assert allows("states:SendTaskSuccess", "*")
    assert any("states:DescribeExecution" in _json.dumps(s["Action"]) and "-upgrade:*" in _json.dumps(s["Resource"])
               for s in api_statements)
    assert any("states:SendTaskSuccess" in _json.dumps(s["Action"]) for s in api_statements)
    assert allows("cloudformation:DetectStackDrift", "stack/AWSProton-*/*")
    assert allows("cloudformation:DescribeStackResourceDrifts", "stack/${StackNamePrefix}*/*")
    drift = tasks["Events"]["DriftSchedule"]["Properties"]
    assert _json.loads(drift["Input"]) == {"task": "detectDrift"}
    assert {"Fn::If": ["DetectDrift", {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess"},
                       {"Ref": "AWS::NoValue"}]} in tasks["Policies"]
    assert variables["PAVED_UPGRADE_STATE_MACHINE_ARN"]["Fn::Sub"].endswith("stateMachine:${AWS::StackName}-upgrade")
