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
