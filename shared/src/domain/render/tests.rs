use serde_json::json;

use super::*;

fn inputs(value: Json) -> serde_json::Map<String, Json> {
    value.as_object().cloned().unwrap_or_default()
}

fn env(value: Json) -> Value {
    environment_context("dev", &inputs(value))
}

fn service() -> ServiceNames {
    ServiceNames {
        name: "web".into(),
        ..Default::default()
    }
}

#[test]
fn the_environment_namespace_loops_conditionals_and_whitespace_control_render_like_jinja() {
    let source = "Resources:\n{%- for cidr in environment.inputs.cidrs %}\n  Subnet{{ loop.index }}:\n    Type: AWS::EC2::Subnet\n    Properties:\n      CidrBlock: {{ cidr }}\n{%- endfor %}\n  Tagged:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: {{ environment.name ~ \"-\" ~ {\"a\": \"x\", \"b\": \"y\"}[environment.inputs.pick] }}\n{% if environment.inputs.extra is defined %}      Extra: yes\n{% elif environment.inputs.cidrs | length > 1 %}      Many: {{ environment.inputs.cidrs | length }}\n{% else %}      Few: 1\n{% endif %}      Missing: {{ environment.inputs.missing | default('fallback') }}";
    let rendered = render(
        "t.yaml",
        source,
        env(json!({"cidrs": ["10.0.0.0/24", "10.0.1.0/24"], "pick": "b"})),
    )
    .unwrap();
    assert_eq!(
        rendered,
        "Resources:\n  Subnet1:\n    Type: AWS::EC2::Subnet\n    Properties:\n      CidrBlock: 10.0.0.0/24\n  Subnet2:\n    Type: AWS::EC2::Subnet\n    Properties:\n      CidrBlock: 10.0.1.0/24\n  Tagged:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Name: dev-y\n      Many: 2\n      Missing: fallback"
    );
}

#[test]
fn cloudformation_resolve_survives_in_raw_blocks() {
    let source = "Value: '{% raw %}{{resolve:ssm:/my/param}}{% endraw %}'\n";
    assert_eq!(
        render("t.yaml", source, env(json!({}))).unwrap(),
        "Value: '{{resolve:ssm:/my/param}}'"
    );
}

#[test]
fn truncate_behaves_like_jinja() {
    let source = "Name: '{{ (service.name ~ \"--\" ~ service_instance.name) | truncate(29, true, \"zzz\", 0) }}'\nShort: {{ \"hello world foo\" | truncate(9) }}\nKept: {{ \"hello\" | truncate(3) }}";
    let context = instance_context(
        &service(),
        "a-very-long-instance-name-indeed",
        &inputs(json!({})),
        "dev",
        &Outputs::none(),
        None,
    );
    let rendered = render("t.yaml", source, context).unwrap();
    assert_eq!(
        rendered,
        "Name: 'web--a-very-long-instance-zzz'\nShort: hello...\nKept: hello"
    );
}

#[test]
fn proton_filters_format_component_outputs_in_place() {
    let source = "ManagedPolicyArns:\n  - base\n  {{ service_instance.components.default.outputs | proton_cfn_iam_policy_arns }}\nEnvironment:\n  - Name: A\n    Value: b\n  {% if service_instance.components.default.outputs | length > 0 %}\n  {{ service_instance.components.default.outputs | proton_cfn_ecs_task_definition_formatted_env_vars }}\n  {% endif %}\nVariables: {{ service_instance.components.default.outputs | proton_cfn_lambda_function_formatted_env_vars }}\nOne: {{ service_instance.components.default.outputs.BucketName | proton_cfn_sanitize }}";
    let outputs = Outputs::Known(inputs(json!({
        "BucketName": "my-bucket",
        "PolicyArn": "arn:aws:iam::123456789012:policy/read-bucket",
    })));
    let context = instance_context(
        &service(),
        "i",
        &inputs(json!({})),
        "dev",
        &Outputs::none(),
        Some(("c", &outputs)),
    );
    let rendered = render("t.yaml", source, context).unwrap();
    let parsed: Json = yaml_serde::from_str(&rendered).unwrap();
    assert_eq!(
        parsed["ManagedPolicyArns"],
        json!(["base", "arn:aws:iam::123456789012:policy/read-bucket"])
    );
    assert_eq!(
        parsed["Environment"],
        json!([{"Name": "A", "Value": "b"}, {"Name": "BucketName", "Value": "my-bucket"},
               {"Name": "PolicyArn", "Value": "arn:aws:iam::123456789012:policy/read-bucket"}])
    );
    assert_eq!(parsed["Variables"]["BucketName"], "my-bucket");
    assert_eq!(parsed["One"], "my-bucket");
}

#[test]
fn without_a_component_the_filters_print_nothing() {
    let source = "Arns:\n  - base\n  {{ service_instance.components.default.outputs | proton_cfn_iam_policy_arns }}\n";
    let context = instance_context(
        &service(),
        "i",
        &inputs(json!({})),
        "dev",
        &Outputs::none(),
        None,
    );
    let parsed: Json = yaml_serde::from_str(&render("t.yaml", source, context).unwrap()).unwrap();
    assert_eq!(parsed["Arns"], json!(["base"]));
}

#[test]
fn sanitize_refuses_values_that_are_not_names_or_arns() {
    let source = "A: {{ environment.inputs.x | proton_cfn_sanitize }}";
    assert!(
        render(
            "t.yaml",
            source,
            env(json!({"x": "arn:aws:s3:::bucket/key"}))
        )
        .is_ok()
    );
    let err = render("t.yaml", source, env(json!({"x": "a b"}))).unwrap_err();
    assert!(err.to_string().contains("proton_cfn_sanitize"), "{err}");
    let strict = "A: {{ environment.inputs.m | proton_cfn_ecs_task_definition_formatted_env_vars(raw=False) }}";
    let err = render("t.yaml", strict, env(json!({"m": {"K": "has space"}}))).unwrap_err();
    assert!(err.to_string().contains("proton_cfn_sanitize"), "{err}");
}

#[test]
fn an_undefined_variable_names_the_file_the_line_and_the_expression() {
    let source = "A: 1\nB: {{ environment.inputs.nope }}\n";
    let err = render("infrastructure/cloudformation.yaml", source, env(json!({}))).unwrap_err();
    let RenderError::Template { file, line, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (file.as_str(), *line),
        ("infrastructure/cloudformation.yaml", Some(2))
    );
    assert!(reason.contains("environment.inputs.nope"), "{reason}");
    let err = render("t.yaml", "A: {% if %}", env(json!({}))).unwrap_err();
    assert!(
        matches!(err, RenderError::Template { line: Some(1), .. }),
        "{err:?}"
    );
}

#[test]
fn output_that_is_not_yaml_is_reported() {
    let err = render("t.yaml", "A: [unclosed\n", env(json!({}))).unwrap_err();
    assert!(matches!(err, RenderError::NotYaml { .. }), "{err:?}");
}

const TEMPLATE: &str = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: {{ environment.inputs.plain }}\n      Tags:\n        - Key: single\n          Value: '{{ environment.inputs.single }}'\n        - Key: double\n          Value: \"{{ environment.inputs.double }}\"\n      Flow: [a, {{ environment.inputs.flow }}]\n      # note: {{ environment.inputs.comment }}\n      Block: |\n        {{ environment.inputs.block }}\n";

fn hostile(field: &str, value: &str) -> Result<String, RenderError> {
    let mut given = json!({"plain": "p", "single": "s", "double": "d", "flow": "f", "comment": "c", "block": "b"});
    given[field] = json!(value);
    render("t.yaml", TEMPLATE, env(given))
}

#[test]
fn harmless_values_render_in_every_position() {
    let rendered = hostile("plain", "my-bucket").unwrap();
    let parsed: Json = yaml_serde::from_str(&rendered).unwrap();
    assert_eq!(
        parsed["Resources"]["Bucket"]["Properties"]["BucketName"],
        "my-bucket"
    );
    for (field, value) in [
        ("single", "it is fine"),
        ("double", "a: b # c"),
        ("block", "line one"),
        ("comment", "anything # here"),
    ] {
        assert!(hostile(field, value).is_ok(), "{field}={value:?}");
    }
}

#[test]
fn values_that_would_add_resources_or_members_are_refused_wherever_they_land() {
    let attacks = [
        ("plain", "x\n  Evil:\n    Type: AWS::IAM::User"),
        ("plain", "x\nEvil: 1"),
        ("single", "x'\n  Evil: 'y"),
        ("single", "x', Evil: 'y"),
        (
            "double",
            "x\"\n        - Key: injected\n          Value: \"y",
        ),
        ("flow", "f, {Evil: 1}"),
        ("flow", "f], Evil: [x"),
        ("comment", "c\n      Evil: 1"),
        ("block", "b\nEvil: 1"),
        ("plain", "!ImportValue other-stack-export"),
        ("plain", "*alias"),
        ("plain", "&anchor x"),
        ("plain", "value # the rest is cut"),
        ("plain", "{a: 1}"),
        ("plain", "[1, 2]"),
        ("plain", "'quoted'"),
    ];
    for (field, value) in attacks {
        match hostile(field, value) {
            Err(RenderError::Injection { .. } | RenderError::NotYaml { .. }) => {}
            other => panic!("{field}={value:?} was not refused: {other:?}"),
        }
    }
}

#[test]
fn an_escaped_quote_inside_double_quotes_stays_inside_its_scalar() {
    let rendered = hostile("double", "\\\" Evil: 1").unwrap();
    let parsed: Json = yaml_serde::from_str(&rendered).unwrap();
    let tags = &parsed["Resources"]["Bucket"]["Properties"]["Tags"];
    assert_eq!(tags.as_array().unwrap().len(), 2);
    assert_eq!(tags[1], json!({"Key": "double", "Value": "\" Evil: 1"}));
}

#[test]
fn jinja_syntax_in_a_value_stays_text() {
    let rendered = hostile("single", "{{ 7 * 7 }}{% raw %}").unwrap();
    assert!(
        rendered.contains("Value: '{{ 7 * 7 }}{% raw %}'"),
        "{rendered}"
    );
}

#[test]
fn a_huge_value_stays_one_scalar() {
    let big = "x".repeat(40_000);
    let rendered = hostile("double", &big).unwrap();
    assert!(rendered.contains(&big));
}

#[test]
fn pipelines_see_every_instance_with_its_outputs_and_environment() {
    let source = "{% for i in service_instances %}\n{{ i.name }}: {{ i.outputs.Url }} {{ i.environment.name }} {{ i.environment.outputs.VpcId }} {{ i.inputs.port }}\n{% endfor %}\nRepo: {{ service.repository_id }}@{{ service.branch_name }} {{ pipeline.inputs.dockerfile }}";
    let instance = |name: &str, env: &str| PipelineInstance {
        name: name.into(),
        inputs: inputs(json!({"port": 80})),
        outputs: Outputs::Known(inputs(json!({"Url": format!("https://{name}")}))),
        environment_name: env.into(),
        environment_account_id: "123456789012".into(),
        environment_outputs: Outputs::Examples,
    };
    let names = ServiceNames {
        name: "web".into(),
        repository_id: Some("acme/web".into()),
        branch_name: Some("main".into()),
        ..Default::default()
    };
    let context = pipeline_context(
        &names,
        &inputs(json!({"dockerfile": "Dockerfile"})),
        &[instance("a", "dev"), instance("b", "prod")],
    );
    let rendered = render("p.yaml", source, context).unwrap();
    assert_eq!(
        rendered,
        format!(
            "\na: https://a dev {vpc} 80\n\nb: https://b prod {vpc} 80\n\nRepo: acme/web@main Dockerfile",
            vpc = example_output("VpcId")
        )
    );
}

#[test]
fn example_outputs_look_like_what_they_name_and_differ_per_name() {
    assert!(example_output("PrivateSubnet1").starts_with("subnet-"));
    assert_ne!(
        example_output("PrivateSubnet1"),
        example_output("PrivateSubnet2")
    );
    assert!(
        example_output("ServiceTaskDefExecutionRoleArn")
            .starts_with("arn:aws:iam::123456789012:role/")
    );
    assert!(example_output("SNSTopicArn").starts_with("arn:aws:sns:us-east-1:123456789012:"));
    assert_eq!(example_output("SNSRegion"), "example-SNSRegion");
}

#[test]
fn truncate_with_the_largest_length_keeps_the_value_instead_of_overflowing() {
    let source = "Value: '{{ \"abc\" | truncate(18446744073709551615, true, \"...\", 18446744073709551615) }}'\n";
    assert_eq!(
        render("t.yaml", source, env(json!({}))).unwrap(),
        "Value: 'abc'"
    );
}

#[test]
fn an_input_never_becomes_cloudformation_syntax() {
    let sub = "Value: !Sub 'arn:${AWS::Partition}:s3:::{{ environment.inputs.name }}'\n";
    let plain = "Value: '{{ environment.inputs.name }}'\n";
    for (source, value) in [
        (sub, "${AWS::AccountId}"),
        (plain, "x-${AWS::StackName}"),
        (plain, "{{resolve:ssm:/prod/db/password}}"),
        (
            plain,
            "{{resolve:secretsmanager:prod/db:SecretString:password}}",
        ),
    ] {
        match render("t.yaml", source, env(json!({ "name": value }))) {
            Err(RenderError::Injection { reason, .. }) => {
                assert!(
                    reason.contains("CloudFormation") || reason.contains("${"),
                    "{reason}"
                );
            }
            other => panic!("{value:?} in {source:?} rendered: {other:?}"),
        }
    }
    // The template's own syntax is the author's, and plain values pass.
    assert_eq!(
        render("t.yaml", sub, env(json!({ "name": "my-bucket" }))).unwrap(),
        "Value: !Sub 'arn:${AWS::Partition}:s3:::my-bucket'"
    );
}

#[test]
fn no_printed_string_may_carry_the_tracing_marks_whatever_its_source() {
    let evil = "x\u{E001}'\nEvil:\n  Type: AWS::IAM::Role\nY: '\u{E000}y";
    // A repository field (not an input value), an input key, and an output.
    let names = ServiceNames {
        name: "web".into(),
        repository_id: Some(evil.into()),
        ..Default::default()
    };
    let pipeline = pipeline_context(&names, &inputs(json!({})), &[]);
    let source = "Repo: '{{ service.repository_id }}'\n";
    assert!(render("p.yaml", source, pipeline).is_err());
    let keyed = env(json!({ evil: "v" }));
    let source = "{% for k in environment.inputs %}K: '{{ k }}'\n{% endfor %}";
    assert!(render("k.yaml", source, keyed).is_err());
    let outputs = Outputs::Known(serde_json::from_value(json!({ "VpcId": evil })).unwrap());
    let instance = instance_context(&names, "a", &inputs(json!({})), "dev", &outputs, None);
    let source = "Vpc: '{{ environment.outputs.VpcId }}'\n";
    let rendered = render("i.yaml", source, instance);
    assert!(rendered.is_err(), "{rendered:?}");
}

#[test]
fn what_a_render_prints_is_bounded_whatever_the_expression() {
    for source in [
        "Value: '{{ 'x' * 100000000 }}'\n",
        "{% for i in range(100000) %}V{{ i }}: '{{ 'x' * 1000 }}'\n{% endfor %}",
    ] {
        match render("t.yaml", source, env(json!({}))) {
            Err(RenderError::Template { reason, .. }) => {
                assert!(reason.contains("1000000 bytes"), "{reason}");
            }
            other => panic!("{source:?} rendered: {:?}", other.map(|t| t.len())),
        }
    }
}
