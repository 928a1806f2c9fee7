"""`paved client setup` with the stock clients: after it, the AWS CLI v1, the AWS CLI v2 and
boto3 sign Proton calls for `execute-api` (what API Gateway's IAM authorization verifies) and
still reach paved; `paved client remove` puts them back to `proton`."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import PAVED_BIN, REGION, VENV

SCOPE = re.compile(r"\d{8}/" + REGION + r"/([a-z-]+)/aws4_request")


def cli_v2():
    for candidate in ("/usr/bin/aws", "/usr/local/bin/aws"):
        if os.access(candidate, os.X_OK):
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
            if version.startswith("aws-cli/2"):
                return candidate
    return None


def user_env(platform, home, path):
    """A user whose home is `home` (and so whose model folder is `home/.aws/models`), with
    `path` first on PATH, signed in as the platform engineer of `paved dev`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), PATH=f"{path}:{os.environ['PATH']}",
               AWS_SHARED_CREDENTIALS_FILE=str(platform.credentials_file),
               AWS_CONFIG_FILE=str(platform.config_file), AWS_PROFILE="paved-platform")
    return env


def signed_scope(platform, aws, env):
    """Lists environment templates with `aws`; returns the service its signature was for."""
    result = subprocess.run([aws, "--debug", "proton", "list-environment-templates", "--endpoint-url",
                             platform.api, "--region", REGION, "--output", "json"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"templates"' in result.stdout, result.stdout
    scopes = set(SCOPE.findall(result.stderr))
    assert len(scopes) == 1, scopes
    return scopes.pop()


def setup(env, *args):
    result = subprocess.run([str(PAVED_BIN), "client", *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_after_client_setup_the_stock_cli_signs_for_execute_api_and_still_reaches_paved(platform, tmp_path, version):
    if version == "v1":
        aws, python_dir = str(VENV / "bin" / "aws"), str(VENV / "bin")
    else:
        aws = cli_v2()
        if aws is None:
            if os.environ.get("CI"):
                pytest.fail("the AWS CLI v2 is not installed (scripts/aws_cli_v2.sh installs it)")
            pytest.skip("the AWS CLI v2 is not installed here (scripts/aws_cli_v2.sh installs it)")
        python_dir = os.path.dirname(aws)  # Debian's v2 runs on the system python3
    env = user_env(platform, tmp_path, python_dir)
    assert signed_scope(platform, aws, env) == "proton"
    out = setup(env, "setup", "--endpoint", platform.api)
    model = tmp_path / ".aws" / "models" / "proton" / "2020-07-20" / "service-2.json"
    assert model.is_file() and f"AWS_ENDPOINT_URL_PROTON={platform.api}" in out, out
    assert signed_scope(platform, aws, env) == "execute-api"
    # Waiters come from the client's own files and keep working.
    waited = subprocess.run([aws, "proton", "wait", "environment-template-version-registered", "--template-name",
                             "none", "--major-version", "1", "--minor-version", "0", "--endpoint-url", platform.api,
                             "--region", REGION], capture_output=True, text=True, env=env, timeout=120)
    assert "ResourceNotFoundException" in waited.stderr or "Waiter" in waited.stderr, waited.stderr
    setup(env, "remove")
    assert not model.exists()
    assert signed_scope(platform, aws, env) == "proton"


def test_boto3_signs_for_execute_api_after_client_setup_and_a_foreign_model_is_kept(platform, tmp_path):
    env = user_env(platform, tmp_path, str(VENV / "bin"))
    setup(env, "setup")
    check = ("import boto3; c = boto3.client('proton', endpoint_url=%r, region_name=%r); "
             "print(c.meta.service_model.signing_name); print(len(c.list_environments()['environments']) >= 0)"
             % (platform.api, REGION))
    result = subprocess.run([str(VENV / "bin" / "python"), "-c", check], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["execute-api", "True"], result.stdout
    # A model paved did not write is never overwritten or removed without --force.
    model = tmp_path / ".aws" / "models" / "proton" / "2020-07-20" / "service-2.json"
    model.write_text('{"metadata": {}}')
    for args in (["setup"], ["remove"]):
        refused = subprocess.run([str(PAVED_BIN), "client", *args], capture_output=True, text=True, env=env)
        assert refused.returncode != 0 and "paved did not write" in refused.stderr, refused.stderr
    assert model.read_text() == '{"metadata": {}}'
    setup(env, "setup", "--force")
    assert "execute-api" in model.read_text()
