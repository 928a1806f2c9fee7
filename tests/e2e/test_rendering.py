"""Rendering as Proton did, through `paved template`: the public sample corpus rendered and
linted, spot checks of Proton semantics, hostile inputs, and broken bundles."""

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import PAVED_BIN, REPO, SAMPLES, VENV

# cfn-lint findings in the samples' own content, not in what rendering produces.
IGNORED_LINT = {
    "E2533": "the samples pin Lambda runtimes AWS has since deprecated (python3.6, nodejs12.x); "
             "the runtime is the template author's choice and paved renders it as written",
    "E3049": "load-balanced-ecs-ec2-svc maps container host port 0 behind a target group without "
             "HealthCheckPort traffic-port; a property of the sample's design",
}

ENV_BUNDLES = {p.parents[1].name: p.parent for p in SAMPLES.glob("**/v1/infrastructure")}
SERVICE_BUNDLES = sorted(p.parent for p in SAMPLES.glob("**/v1/instance_infrastructure"))
COMPONENT_BUNDLES = sorted(p.parent for p in SAMPLES.glob("component-templates/*/manifest.yaml"))


def paved(*args, check=False):
    env = {"PATH": f"{VENV / 'bin'}:/usr/bin:/bin"}
    result = subprocess.run([str(PAVED_BIN), *map(str, args)], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"paved {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def find_spec(bundle: Path, kind: str) -> Path:
    for folder in list(bundle.parents)[:4]:
        for sub in ("spec", "specs"):
            for path in sorted((folder / sub).glob("*.yaml")):
                if f"proton: {kind}" in path.read_text():
                    return path
    raise AssertionError(f"no {kind} next to {bundle}")


def ignore_args():
    return ["--ignore-checks", ",".join(IGNORED_LINT)]


def environment_outputs(name: str, tmp_path: Path) -> Path:
    bundle = ENV_BUNDLES[name]
    outputs = paved("template", "outputs", bundle, "--spec", find_spec(bundle, "EnvironmentSpec"), check=True).stdout
    path = tmp_path / f"{name}-outputs.json"
    path.write_text(json.dumps({"environment": json.loads(outputs)}))
    return path


def test_the_corpus_is_whole():
    assert (len(ENV_BUNDLES), len(SERVICE_BUNDLES), len(COMPONENT_BUNDLES)) == (6, 17, 1)
    # 6 environment + 17 instance + 17 pipeline + 1 component template files.
    assert len(ENV_BUNDLES) + 2 * len(SERVICE_BUNDLES) + len(COMPONENT_BUNDLES) == 41


@pytest.mark.parametrize("name", sorted(ENV_BUNDLES))
def test_every_environment_sample_renders_and_lints(name):
    result = paved("template", "test", ENV_BUNDLES[name], *ignore_args())
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [l for l in result.stdout.splitlines() if "infrastructure/cloudformation.yaml rendered and passed cfn-lint" in l]
    assert passed, result.stdout


@pytest.mark.parametrize("bundle", SERVICE_BUNDLES, ids=lambda p: p.parent.name)
def test_every_service_sample_renders_and_lints_with_its_environments_outputs(bundle, tmp_path):
    env_name = (bundle / ".compatible-envs").read_text().split()[0].split(":")[0]
    outputs = environment_outputs(env_name, tmp_path)
    result = paved("template", "test", bundle, "--outputs", outputs, *ignore_args())
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert any("instance_infrastructure/cloudformation.yaml rendered and passed cfn-lint" in l for l in out.splitlines()), out
    assert any("pipeline_infrastructure/cloudformation.yaml rendered and passed cfn-lint" in l for l in out.splitlines()), out


@pytest.mark.parametrize("bundle", COMPONENT_BUNDLES, ids=lambda p: p.name)
def test_the_component_sample_renders_and_lints(bundle):
    result = paved("template", "test", bundle, *ignore_args())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cloudformation.yaml rendered and passed cfn-lint" in result.stdout


class AnyTagLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML (short-form tags such as !Ref) for structural comparison."""


AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def resources(text):
    return sorted(yaml.load(text, Loader=AnyTagLoader)["Resources"])


def render(bundle, spec, *extra):
    return paved("template", "render", bundle, "--spec", spec, *extra)


def test_a_lambda_pipeline_picks_its_build_runtime_from_the_instance_outputs():
    bundle = SAMPLES / "service-templates/apigw-lambda-svc/v1"
    result = render(bundle, bundle.parent / "spec/spec.yaml", "--part", "pipeline")
    assert result.returncode == 0, result.stderr
    # The instance declares LambdaRuntime nodejs12.x; the pipeline indexes a dict literal with it.
    assert '"runtime-versions": {"nodejs": "12.x"},' in result.stdout
    assert '"cd $CODEBUILD_SRC_DIR/lambda-ping-sns",' in result.stdout


def test_a_fargate_instance_truncates_its_names_and_formats_component_outputs(tmp_path):
    bundle = SAMPLES / "service-templates/load-balanced-fargate-svc/v1"
    outputs = tmp_path / "outputs.yaml"
    outputs.write_text(
        "component:\n  BucketName: my-bucket\n  BucketAccessPolicyArn: arn:aws:iam::123456789012:policy/read-bucket\n")
    result = render(bundle, bundle.parent / "spec/spec.yaml", "--outputs", outputs, "--name", "web")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "- !Ref BaseTaskRoleManagedPolicy\n        - \"arn:aws:iam::123456789012:policy/read-bucket\"" in text
    assert '- Name: "BucketName"\n              Value: "my-bucket"' in text
    other = SAMPLES / "loadbalanced-fargate-svc/loadbalanced-fargate-svc/v1"
    result = render(other, SAMPLES / "loadbalanced-fargate-svc/specs/svc-spec.yaml", "--name", "web")
    assert result.returncode == 0, result.stderr
    # truncate(29, true, 'zzz', 0) of "web--frontend-dev" keeps it whole; of a long name cuts it.
    assert "Name: 'web--frontend-dev'" in result.stdout
    result = render(other, SAMPLES / "loadbalanced-fargate-svc/specs/svc-spec.yaml", "--name", "a-rather-long-service")
    assert "Name: 'a-rather-long-service--frozzz'" in result.stdout


def test_a_hostile_spec_is_refused_and_never_changes_the_resources(tmp_path):
    bundle = SAMPLES / "environment-templates/vpc-env/v1"
    spec = tmp_path / "spec.yaml"
    spec.write_text('proton: EnvironmentSpec\nspec:\n  vpc_cidr: "10.0.0.0/16\\n  Evil:\\n    Type: AWS::IAM::User"\n')
    hostile = render(bundle, spec)
    normal = render(bundle, bundle.parent / "spec/spec.yaml")
    # The value is single-quoted in this template: YAML folds it into one harmless scalar.
    if hostile.returncode == 0:
        assert resources(hostile.stdout) == resources(normal.stdout)
        assert "Evil" not in resources(hostile.stdout)
    else:
        assert "structure" in hostile.stderr or "not valid YAML" in hostile.stderr
    plain = tmp_path / "plain"
    (plain / "schema").mkdir(parents=True)
    (plain / "infrastructure").mkdir()
    (plain / "schema/schema.yaml").write_text(
        "schema:\n  format: {openapi: '3.0.0'}\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        name: {type: string}\n")
    (plain / "infrastructure/manifest.yaml").write_text(
        "infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n")
    (plain / "infrastructure/cloudformation.yaml").write_text(
        "Resources:\n  Param:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: '{{ environment.inputs.name }}'\n")
    for hostile in ["x'\\n  Evil:\\n    Type: AWS::IAM::User\\n  Y: 'y", "x', Evil: 'y"]:
        spec.write_text(f'proton: EnvironmentSpec\nspec:\n  name: "{hostile}"\n')
        result = render(plain, spec)
        assert result.returncode != 0, result.stdout
        assert "would change the template's structure" in result.stderr or "not valid YAML" in result.stderr
    spec.write_text('proton: EnvironmentSpec\nspec:\n  name: "{{ 6 * 7 }} stays text"\n')
    result = render(plain, spec)
    assert result.returncode == 0, result.stderr
    assert "Value: '{{ 6 * 7 }} stays text'" in result.stdout


@pytest.mark.parametrize("spec,message", [
    ("proton: ServiceSpec\ninstances:\n  - name: a\n    environment: e\n    spec:\n      port: eighty\n", "port: must be of type number"),
    ("proton: ServiceSpec\ninstances:\n  - name: a\n    environment: e\n    spec:\n      task_size: huge\n", "task_size: must be one of"),
    ("proton: ServiceSpec\ninstances: [" + "[" * 200 + "]" * 200 + "]\n", "spec"),
])
def test_bad_specs_name_the_instance_and_the_rule(tmp_path, spec, message):
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    result = render(SAMPLES / "service-templates/load-balanced-fargate-svc/v1", path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_an_unknown_instance_is_named(tmp_path):
    bundle = SAMPLES / "service-templates/load-balanced-fargate-svc/v1"
    result = render(bundle, bundle.parent / "spec/spec.yaml", "--instance", "nope")
    assert result.returncode != 0 and 'no instance "nope"' in result.stderr


def broken_bundle(tmp_path, schema=None, template=None):
    folder = tmp_path / "broken" / "v1"
    (folder / "schema").mkdir(parents=True)
    (folder / "infrastructure").mkdir()
    (folder / "schema/schema.yaml").write_text(schema or
        "schema:\n  format: {openapi: '3.0.0'}\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        size: {type: number, default: 1}\n")
    (folder / "infrastructure/manifest.yaml").write_text(
        "infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n")
    (folder / "infrastructure/cloudformation.yaml").write_text(template or
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")
    (tmp_path / "broken" / "spec").mkdir()
    (tmp_path / "broken" / "spec" / "spec.yaml").write_text("proton: EnvironmentSpec\nspec: {}\n")
    return folder


def test_template_test_passes_a_good_bundle_and_fails_broken_ones_with_their_cause(tmp_path):
    good = paved("template", "test", broken_bundle(tmp_path / "good"))
    assert good.returncode == 0, good.stdout
    assert "template test: 2 passed, 0 failed" in good.stdout

    bad_schema = paved("template", "test", broken_bundle(tmp_path / "s", schema="schema:\n  format: {openapi: '3.0.0'}\n  types: {}\n"))
    assert bad_schema.returncode == 1
    assert "schema/schema.yaml: schema.environment_input_type is missing" in bad_schema.stdout

    undefined = paved("template", "test", broken_bundle(
        tmp_path / "u", template="Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: {{ environment.inputs.nope }}\n"))
    assert undefined.returncode == 1
    assert "infrastructure/cloudformation.yaml:5: undefined value" in undefined.stdout
    assert "environment.inputs.nope" in undefined.stdout

    invalid = paved("template", "test", broken_bundle(tmp_path / "c", template="Resources:\n  Thing:\n    Type: AWS::Nothing::Here\n"))
    assert invalid.returncode == 1
    assert "cfn-lint" in invalid.stdout and "E3006" in invalid.stdout


def test_a_tar_gz_bundle_renders_like_its_folder(tmp_path):
    folder = SAMPLES / "environment-templates/vpc-env/v1"
    archive = tmp_path / "vpc-env.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=".")
    spec = folder.parent / "spec/spec.yaml"
    from_folder = render(folder, spec, "--name", "dev")
    from_archive = render(archive, spec, "--name", "dev")
    assert from_folder.returncode == 0 and from_folder.stdout == from_archive.stdout
