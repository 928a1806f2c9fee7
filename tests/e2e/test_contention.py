"""A fleet writing at once, against a local AWS whose DynamoDB cancels transactions that meet
another's items in flight, as DynamoDB does (PAVED_MOTO_CONTENTION_MS): concurrent CreateService
and UpdateServiceInstance calls on one template version are all answered, none refused for a
conflict that did not happen."""

import os
import threading

import pytest
from botocore.exceptions import ClientError

from conftest import Platform, pack_entries, unique
from test_paging import ENV_SCHEMA, FILE, INSTANCE, MANIFEST, QUEUE, ROLE, SVC_SCHEMA

CONCURRENT = 24


@pytest.fixture(scope="module")
def contended(tmp_path_factory):
    os.environ["PAVED_MOTO_CONTENTION_MS"] = "100"
    try:
        running = Platform(tmp_path_factory.mktemp("contended"))
    finally:
        del os.environ["PAVED_MOTO_CONTENTION_MS"]
    yield running
    running.stop()


def at_once(calls):
    """Runs every call at the same moment, each on its own client; the errors they raised."""
    errors, start = [], threading.Barrier(len(calls))

    def run(call):
        start.wait()
        try:
            call()
        except ClientError as error:
            errors.append(error.response["Error"])

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def conflicts(platform):
    """How many transactions the local AWS has cancelled for contention so far."""
    log = platform.log.parent / "moto.log"
    return log.read_text().count("paved-contention: TransactionConflict") if log.exists() else 0


def test_concurrent_creates_and_upgrades_on_one_version_are_all_answered(contended):
    import time
    platform, proton = contended, contended.proton()
    env_template, svc_template = unique("busy-env"), unique("busy-svc")
    proton.create_environment_template(name=env_template)
    proton.create_environment_template_version(templateName=env_template, source=platform.upload(pack_entries([
        ("schema/schema.yaml", ENV_SCHEMA, FILE), ("infrastructure/manifest.yaml", MANIFEST, FILE),
        ("infrastructure/cloudformation.yaml", QUEUE, FILE)])))
    proton.update_environment_template_version(templateName=env_template, majorVersion="1", minorVersion="0",
                                               status="PUBLISHED")
    bundle = platform.upload(pack_entries([
        ("schema/schema.yaml", SVC_SCHEMA, FILE), ("instance_infrastructure/manifest.yaml", MANIFEST, FILE),
        ("instance_infrastructure/cloudformation.yaml", INSTANCE, FILE)]))
    proton.create_service_template(name=svc_template, pipelineProvisioning="CUSTOMER_MANAGED")
    compatible = [{"templateName": env_template, "majorVersion": "1"}]
    proton.create_service_template_version(templateName=svc_template, source=bundle,
                                           compatibleEnvironmentTemplates=compatible)
    proton.update_service_template_version(templateName=svc_template, majorVersion="1", minorVersion="0",
                                           status="PUBLISHED")
    envs = [unique("busy") for _ in range(CONCURRENT)]
    for env in envs:
        proton.create_environment(name=env, templateName=env_template, templateMajorVersion="1",
                                  protonServiceRoleArn=ROLE, spec="proton: EnvironmentSpec\nspec: {}\n")
    for env in envs:
        platform.cli("proton", "wait", "environment-deployed", "--name", env)

    services = [unique("busy-svc") for _ in envs]

    def create(service, env):
        client = platform.proton()
        return lambda: client.create_service(
            name=service, templateName=svc_template, templateMajorVersion="1",
            spec=f"proton: ServiceSpec\ninstances:\n  - name: main\n    environment: {env}\n")

    before, started = conflicts(platform), time.monotonic()
    errors = at_once([create(s, e) for s, e in zip(services, envs)])
    print(f"\n{CONCURRENT} concurrent CreateService: {time.monotonic() - started:.2f} s, "
          f"{conflicts(platform) - before} transactions cancelled for contention")
    assert errors == [], errors
    for service in services:
        platform.cli("proton", "wait", "service-created", "--name", service)

    # A new minor, and every instance moved to it at once: each write changes both versions'
    # in-use counts.
    proton.create_service_template_version(templateName=svc_template, majorVersion="1", source=bundle,
                                           compatibleEnvironmentTemplates=compatible)
    proton.update_service_template_version(templateName=svc_template, majorVersion="1", minorVersion="1",
                                           status="PUBLISHED")

    def upgrade(service):
        client = platform.proton()
        return lambda: client.update_service_instance(name="main", serviceName=service,
                                                      deploymentType="MINOR_VERSION")

    before, started = conflicts(platform), time.monotonic()
    errors = at_once([upgrade(s) for s in services])
    print(f"{CONCURRENT} concurrent UpdateServiceInstance MINOR_VERSION: {time.monotonic() - started:.2f} s, "
          f"{conflicts(platform) - before} transactions cancelled for contention")
    assert errors == [], errors
    for service in services:
        platform.cli("proton", "wait", "service-instance-deployed", "--name", "main", "--service-name", service)
        got = proton.get_service_instance(name="main", serviceName=service)["serviceInstance"]
        assert got["templateMinorVersion"] == "1", got
    # The counts are right: 1.0 is used by nothing now and can go; 1.1 by every instance.
    proton.delete_service_template_version(templateName=svc_template, majorVersion="1", minorVersion="0")
    with pytest.raises(ClientError) as caught:
        proton.delete_service_template_version(templateName=svc_template, majorVersion="1", minorVersion="1")
    error = caught.value.response["Error"]
    assert error["Code"] == "ConflictException" and f"used by {CONCURRENT} deployed" in error["Message"], error
