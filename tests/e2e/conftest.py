"""End-to-end fixtures: one real `paved dev` (moto + the Proton API) for the session, driven by
the stock aws CLI and boto3 exactly as a platform engineer would."""

import configparser
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("VENV", REPO / ".venv"))
if not VENV.is_absolute():
    VENV = REPO / VENV
PAVED_BIN = Path(os.environ.get("PAVED_BIN", REPO / "target" / "debug" / "paved"))
if not PAVED_BIN.is_absolute():
    PAVED_BIN = REPO / PAVED_BIN
SAMPLES = Path(os.environ.get("PAVED_SAMPLES", REPO / "conformance" / "proton-cfn-samples"))
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Platform:
    """A running `paved dev` and the clients that talk to it."""

    def __init__(self, tmp: Path, extra_args=()):
        self.port, self.aws_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.aws = f"http://127.0.0.1:{self.aws_port}"
        self.bucket = "paved-bundles"
        env = dict(os.environ, **CREDENTIALS)
        env.setdefault("PAVED_LOG", "warn")
        # Output goes to a file: a pipe nobody reads fills up and blocks paved mid-request.
        self.log = tmp / "paved-dev.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [str(PAVED_BIN), "dev", "--port", str(self.port), "--aws-port", str(self.aws_port),
                 "--moto-server", f"{VENV / 'bin' / 'python'} {REPO / 'scripts' / 'moto_server.py'}",
                 "--state-dir", str(tmp), "--statemachines", str(REPO / "statemachines"), *extra_args],
                stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
            )
        self.banner = []
        self.credentials_file = tmp / "credentials"
        self.config_file = tmp / "config"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.process.poll() is None:
            self.banner = self.log.read_text().splitlines(keepends=True)
            if any(line.startswith("Stop with Ctrl-C") for line in self.banner):
                parsed = configparser.ConfigParser()
                parsed.read(self.credentials_file)
                self.keys = {name: (parsed[name]["aws_access_key_id"], parsed[name]["aws_secret_access_key"])
                             for name in parsed.sections()}
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("paved dev did not start:\n" + self.log.read_text())

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def proton(self, validate=True, profile="paved-platform"):
        """boto3 as one of `paved dev`'s identities (the platform engineer unless told)."""
        key, secret = self.keys[profile]
        return boto3.client(
            "proton", endpoint_url=self.api, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=Config(parameter_validation=validate, retries={"max_attempts": 1}),
        )

    def post(self, target, body, profile="paved-platform", service="proton", sign=True):
        """A raw awsJson POST, SigV4-signed with botocore's signer as one of the identities;
        returns (status, parsed body)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"}
        data = body.encode() if isinstance(body, str) else body
        if sign:
            request = AWSRequest(method="POST", url=self.api + "/", data=data, headers=headers)
            SigV4Auth(Credentials(*self.keys[profile]), service, REGION).add_auth(request)
            headers = dict(request.headers.items())
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("POST", "/", body=data, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    def s3(self):
        return boto3.client("s3", endpoint_url=self.aws, region_name=REGION,
                            aws_access_key_id="test", aws_secret_access_key="test")

    def cli(self, *args, check=True, profile="paved-platform"):
        """Runs the stock `aws` CLI against paved (proton, signed as one of `paved dev`'s
        identities) or moto (anything else)."""
        endpoint = self.api if args[0] == "proton" else self.aws
        env = dict(os.environ, **CREDENTIALS)
        if args[0] == "proton":
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                env.pop(name, None)
            env.update(AWS_SHARED_CREDENTIALS_FILE=str(self.credentials_file),
                       AWS_CONFIG_FILE=str(self.config_file), AWS_PROFILE=profile)
        result = subprocess.run(
            [str(VENV / "bin" / "aws"), *args, "--endpoint-url", endpoint, "--output", "json"],
            capture_output=True, text=True, env=env, timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {result.stderr}")
        return result

    def cli_json(self, *args, profile="paved-platform"):
        out = self.cli(*args, profile=profile).stdout
        return json.loads(out) if out.strip() else None

    def upload(self, data: bytes, key=None) -> dict:
        key = key or f"uploads/{uuid.uuid4()}.tar.gz"
        self.s3().put_object(Bucket=self.bucket, Key=key, Body=data)
        return {"s3": {"bucket": self.bucket, "key": key}}

    def kept_bundles(self, template_name: str):
        listed = self.s3().list_objects_v2(Bucket=self.bucket, Prefix="bundles/")
        return [o["Key"] for o in listed.get("Contents", []) if f"/{template_name}/" in o["Key"]]


def pack_folder(folder: Path) -> bytes:
    """A bundle as template authors make it: `tar czf bundle.tar.gz -C <template>/v1 .`"""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def pack_entries(entries) -> bytes:
    """A bundle from (name, bytes | None, tar type) entries, for hostile archives."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    running = Platform(tmp_path_factory.mktemp("paved"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def proton(platform):
    return platform.proton()


@pytest.fixture(scope="session")
def raw_proton(platform):
    """A client that does not check parameters itself, so paved's own checks are what answers."""
    return platform.proton(validate=False)
