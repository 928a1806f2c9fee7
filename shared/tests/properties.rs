//! Whatever a caller sends, paved answers: specs, schemas, bundles and templates generated at
//! random (near-valid ones most of all) are parsed, checked and rendered to a result or a
//! refusal, never a panic. proptest shrinks a failure to its smallest case.

use std::io::Write;

use paved_core::domain::bundle::{Bundle, BundleLayout};
use paved_core::domain::render::render;
use paved_core::domain::spec::Spec;
use proptest::prelude::*;

/// Text made of the pieces YAML and Jinja give meaning to, so that most cases get past the
/// first character of a parser.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("proton: ServiceSpec\n".to_string()),
        Just("proton: EnvironmentSpec\n".to_string()),
        Just("instances:\n".to_string()),
        Just("  - name: a\n".to_string()),
        Just("    environment: dev\n".to_string()),
        Just("spec:\n".to_string()),
        Just("pipeline:\n".to_string()),
        Just("  ".to_string()),
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("\n".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!binary ".to_string()),
        Just("!Ref ".to_string()),
        Just("<<: *a\n".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("|\n".to_string()),
        Just("# c\n".to_string()),
        Just("18446744073709551615".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("1e309".to_string()),
        Just(".nan".to_string()),
        Just("~".to_string()),
        "[a-z]{1,8}",
        "[0-9]{1,25}",
        "\\PC{0,6}",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// A schema document: a valid header, then anything.
fn schemaish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("      properties:\n".to_string()),
        Just("        x:\n".to_string()),
        Just("          type: string\n".to_string()),
        Just("          type: number\n".to_string()),
        Just("          type: array\n".to_string()),
        Just("          items: {type: string}\n".to_string()),
        Just("          minimum: 18446744073709551615\n".to_string()),
        Just("          maxLength: -1\n".to_string()),
        Just("          pattern: '(a+)+$'\n".to_string()),
        Just("          pattern: '['\n".to_string()),
        Just("          default: 1e309\n".to_string()),
        Just("          enum: [a, 1, null]\n".to_string()),
        Just("      required: [x, y]\n".to_string()),
        Just("  $ref: '#/a'\n".to_string()),
        Just("    Other:\n".to_string()),
        Just("      type: object\n".to_string()),
    ];
    proptest::collection::vec(piece, 0..20).prop_map(|pieces| {
        format!(
            "schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: In\n  types:\n    In:\n      type: object\n{}",
            pieces.concat()
        )
    })
}

/// Jinja source made of the pieces paved's namespaces and filters give meaning to.
fn jinjaish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{ ".to_string()),
        Just(" }}".to_string()),
        Just("{% if ".to_string()),
        Just("{% endif %}".to_string()),
        Just("{% for i in ".to_string()),
        Just("{% endfor %}".to_string()),
        Just("{% raw %}".to_string()),
        Just("{% endraw %}".to_string()),
        Just(" %}".to_string()),
        Just("environment.inputs.cidr".to_string()),
        Just("environment.inputs".to_string()),
        Just("environment.outputs.Vpc".to_string()),
        Just("service_instance.inputs.port".to_string()),
        Just("| truncate(18446744073709551615)".to_string()),
        Just("| truncate(-1)".to_string()),
        Just("| int".to_string()),
        Just("| float".to_string()),
        Just("| proton_cfn_ingress_rules".to_string()),
        Just("| sanitize".to_string()),
        Just("range(1000000000)".to_string()),
        Just("'x' * 99999999".to_string()),
        Just("[1,2] * 99999999".to_string()),
        Just(" ~ ".to_string()),
        Just(" + ".to_string()),
        Just(" // 0".to_string()),
        Just(" % 0".to_string()),
        Just("Resources:\n  R:\n    Type: AWS::SNS::Topic\n".to_string()),
        Just("    Properties:\n      TopicName: ".to_string()),
        Just("\n".to_string()),
        "[a-z]{1,6}",
        "[0-9]{1,20}",
    ];
    proptest::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

fn context() -> minijinja::Value {
    minijinja::context! {
        environment => minijinja::context! {
            name => "dev",
            inputs => minijinja::context! { cidr => "10.0.0.0/16", count => 3 },
            outputs => minijinja::context! { Vpc => "vpc-1" },
        },
        service_instance => minijinja::context! {
            name => "web",
            inputs => minijinja::context! { port => 80 },
        },
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A tar.gz of the given entries, written as tar itself writes them (paths unchecked).
fn archive(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        let name = path.as_bytes();
        let room = header.as_old().name.len();
        header.as_old_mut().name[..name.len().min(room)]
            .copy_from_slice(&name[..name.len().min(room)]);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data.as_slice()).unwrap();
    }
    gzip(&builder.into_inner().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_spec_is_parsed_or_refused(text in yamlish()) {
        let _ = Spec::parse(&text);
    }

    #[test]
    fn any_schema_is_checked_or_refused(text in schemaish()) {
        let _ = BundleLayout::Environment.parse_schema(&text);
    }

    #[test]
    fn any_bytes_are_unpacked_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Bundle::unpack(&bytes);
        let _ = Bundle::unpack(&gzip(&bytes));
    }

    #[test]
    fn any_archive_is_unpacked_or_refused(
        entries in proptest::collection::vec(
            (
                prop_oneof![
                    Just("schema/schema.yaml".to_string()),
                    Just("infrastructure/manifest.yaml".to_string()),
                    Just("../escape".to_string()),
                    Just("/abs/path".to_string()),
                    Just("a/./b/../../c".to_string()),
                    "[a-z/.]{1,40}",
                ],
                proptest::collection::vec(any::<u8>(), 0..256),
            ),
            0..12,
        )
    ) {
        if let Ok(bundle) = Bundle::unpack(&archive(&entries)) {
            for path in bundle.paths() {
                prop_assert!(!path.starts_with('/') && !path.split('/').any(|p| p == ".."), "{path}");
            }
        }
    }

    #[test]
    fn any_template_is_rendered_or_refused(source in jinjaish()) {
        let _ = render("cloudformation.yaml", &source, context());
    }
}
