//! The Proton API over in-memory adapters: wire shapes, errors and catalog rules.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{App, router};
use crate::adapters::memory::MemoryBundleStore;
use crate::app::catalog::Catalog;
use crate::domain::bundle::tests::{ENV_SCHEMA, MANIFEST, env_bundle, pack};
use crate::testing::{Engine, Fakes, callers};

struct Harness {
    app: Arc<App>,
    bundles: Arc<MemoryBundleStore>,
}

const SVC_SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  service_input_type: Svc\n  pipeline_input_type: Pipe\n  types:\n    Svc:\n      type: object\n      properties:\n        port:\n          type: number\n          default: 80\n    Pipe:\n      type: object\n      properties:\n        dockerfile:\n          type: string\n          default: Dockerfile\n";

fn service_bundle() -> Vec<u8> {
    let file = tar::EntryType::Regular;
    pack(&[
        ("schema/schema.yaml", SVC_SCHEMA.as_bytes(), file),
        (
            "instance_infrastructure/manifest.yaml",
            MANIFEST.as_bytes(),
            file,
        ),
        (
            "instance_infrastructure/cloudformation.yaml",
            b"Resources: {}\n",
            file,
        ),
        (
            "pipeline_infrastructure/manifest.yaml",
            MANIFEST.as_bytes(),
            file,
        ),
        (
            "pipeline_infrastructure/cloudformation.yaml",
            b"Resources: {}\n",
            file,
        ),
    ])
}

impl Harness {
    fn new() -> Self {
        let fakes = Fakes::new("paved-bundles");
        let bundles = fakes.bundles.clone();
        bundles.put("src", "env.tar.gz", env_bundle());
        bundles.put("src", "svc.tar.gz", service_bundle());
        let catalog = Catalog::new(fakes.store.clone(), bundles.clone());
        let security = crate::testing::callers::security(fakes.store.clone());
        let app = Arc::new(App::new(
            catalog,
            fakes.deployer(Engine::CloudFormation),
            security,
        ));
        Self { app, bundles }
    }

    async fn call(&self, operation: &str, body: Value) -> (StatusCode, Value) {
        self.raw(
            Some(&format!("AwsProton20200720.{operation}")),
            body.to_string(),
        )
        .await
    }

    async fn raw(&self, target: Option<&str>, body: String) -> (StatusCode, Value) {
        self.raw_as(callers::PLATFORM, target, body).await
    }

    /// A call signed (SigV4, signing name `proton`) with a persona's key.
    async fn call_as(&self, key: &str, operation: &str, body: Value) -> (StatusCode, Value) {
        self.raw_as(
            key,
            Some(&format!("AwsProton20200720.{operation}")),
            body.to_string(),
        )
        .await
    }

    async fn raw_as(&self, key: &str, target: Option<&str>, body: String) -> (StatusCode, Value) {
        let mut headers = vec![
            ("host", "paved.test"),
            ("content-type", "application/x-amz-json-1.0"),
        ];
        if let Some(target) = target {
            headers.push(("x-amz-target", target));
        }
        let signed = crate::api::authn::sign(
            "POST",
            "http://paved.test/",
            &headers,
            body.as_bytes(),
            key,
            &callers::secret(key),
            "us-east-1",
            "proton",
            std::time::SystemTime::now(),
        )
        .unwrap();
        let mut request = Request::post("/");
        for (name, value) in headers.iter().copied() {
            request = request.header(name, value);
        }
        for (name, value) in &signed {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = router(self.app.clone())
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// One of paved's own operations, as the platform team.
    async fn call_paved(&self, operation: &str, body: Value) -> Value {
        let (status, value) = self
            .raw(
                Some(&format!("Paved20261127.{operation}")),
                body.to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{operation}: {value}");
        value
    }

    async fn ok(&self, operation: &str, body: Value) -> Value {
        let (status, value) = self.call(operation, body).await;
        assert_eq!(status, StatusCode::OK, "{operation}: {value}");
        value
    }

    async fn err(&self, operation: &str, body: Value) -> (String, String) {
        let (status, value) = self.call(operation, body).await;
        assert_ne!(status, StatusCode::OK, "{operation} should fail: {value}");
        let kind = value["__type"].as_str().unwrap().to_string();
        let expected = match kind.as_str() {
            "ValidationException" => 400,
            "ResourceNotFoundException" => 404,
            "ConflictException" => 409,
            _ => status.as_u16(),
        };
        assert_eq!(status.as_u16(), expected, "{kind} status");
        (kind, value["message"].as_str().unwrap().to_string())
    }

    async fn env_template_with_version(&self) -> Value {
        self.ok("CreateEnvironmentTemplate", json!({"name": "vpc"}))
            .await;
        self.ok(
            "CreateEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "source": {"s3": {"bucket": "src", "key": "env.tar.gz"}}}),
        )
        .await
    }

    async fn publish(&self, template: &str, major: &str, minor: &str) -> Value {
        self.ok(
            "UpdateEnvironmentTemplateVersion",
            json!({"templateName": template, "majorVersion": major, "minorVersion": minor, "status": "PUBLISHED"}),
        )
        .await
    }
}

#[tokio::test]
async fn a_template_is_created_and_read_back_in_proton_shape() {
    let h = Harness::new();
    let created = h
        .ok(
            "CreateEnvironmentTemplate",
            json!({"name": "vpc", "displayName": "VPC", "description": "d"}),
        )
        .await;
    let template = &created["environmentTemplate"];
    assert_eq!(
        template["arn"],
        "arn:aws:proton:us-east-1:123456789012:environment-template/vpc"
    );
    assert_eq!(template["displayName"], "VPC");
    assert!(template["createdAt"].is_f64() || template["createdAt"].is_u64());
    assert!(template.get("recommendedVersion").is_none());
    let got = h.ok("GetEnvironmentTemplate", json!({"name": "vpc"})).await;
    assert_eq!(got, created);
}

#[tokio::test]
async fn create_by_name_is_idempotent_until_the_parameters_differ() {
    let h = Harness::new();
    let first = h
        .ok(
            "CreateServiceTemplate",
            json!({"name": "web", "description": "a"}),
        )
        .await;
    let again = h
        .ok(
            "CreateServiceTemplate",
            json!({"name": "web", "description": "a"}),
        )
        .await;
    assert_eq!(first, again);
    let (kind, message) = h
        .err(
            "CreateServiceTemplate",
            json!({"name": "web", "description": "b"}),
        )
        .await;
    assert_eq!(kind, "ConflictException");
    assert!(message.contains("already exists"), "{message}");
}

#[tokio::test]
async fn a_version_registers_as_draft_then_publishes_and_becomes_recommended() {
    let h = Harness::new();
    let created = h.env_template_with_version().await;
    let version = &created["environmentTemplateVersion"];
    assert_eq!(version["status"], "DRAFT");
    assert_eq!(version["majorVersion"], "1");
    assert_eq!(version["minorVersion"], "0");
    assert_eq!(version["schema"], ENV_SCHEMA);
    assert_eq!(
        version["arn"],
        "arn:aws:proton:us-east-1:123456789012:environment-template/vpc:1.0"
    );
    assert!(version.get("recommendedMinorVersion").is_none());

    let published = h.publish("vpc", "1", "0").await;
    assert_eq!(
        published["environmentTemplateVersion"]["status"],
        "PUBLISHED"
    );
    assert_eq!(
        published["environmentTemplateVersion"]["recommendedMinorVersion"],
        "0"
    );
    let template = h.ok("GetEnvironmentTemplate", json!({"name": "vpc"})).await;
    assert_eq!(template["environmentTemplate"]["recommendedVersion"], "1.0");

    let (kind, message) = h
        .err(
            "UpdateEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "majorVersion": "1", "minorVersion": "0", "status": "DRAFT"}),
        )
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(message.contains("cannot go back to DRAFT"), "{message}");
}

#[tokio::test]
async fn minor_and_major_versions_are_numbered_as_the_model_says() {
    let h = Harness::new();
    h.env_template_with_version().await;
    let source = json!({"s3": {"bucket": "src", "key": "env.tar.gz"}});
    let minor = h
        .ok(
            "CreateEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "majorVersion": "1", "source": source}),
        )
        .await;
    assert_eq!(minor["environmentTemplateVersion"]["minorVersion"], "1");
    let major = h
        .ok(
            "CreateEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "source": source}),
        )
        .await;
    assert_eq!(major["environmentTemplateVersion"]["majorVersion"], "2");
    assert_eq!(major["environmentTemplateVersion"]["minorVersion"], "0");
    let (kind, message) = h
        .err(
            "CreateEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "majorVersion": "7", "source": source}),
        )
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(
        message.contains("majorVersion 7 does not exist"),
        "{message}"
    );

    let listed = h
        .ok(
            "ListEnvironmentTemplateVersions",
            json!({"templateName": "vpc"}),
        )
        .await;
    let numbers: Vec<String> = listed["templateVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            format!(
                "{}.{}",
                v["majorVersion"].as_str().unwrap(),
                v["minorVersion"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(numbers, ["1.0", "1.1", "2.0"]);
    let only_major_1 = h
        .ok(
            "ListEnvironmentTemplateVersions",
            json!({"templateName": "vpc", "majorVersion": "1"}),
        )
        .await;
    assert_eq!(
        only_major_1["templateVersions"].as_array().unwrap().len(),
        2
    );
    assert!(
        listed["templateVersions"][0].get("schema").is_none(),
        "summaries carry no schema"
    );
}

#[tokio::test]
async fn listings_page_with_next_token() {
    let h = Harness::new();
    for name in ["a", "b", "c", "d", "e"] {
        h.ok("CreateEnvironmentTemplate", json!({"name": name}))
            .await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = json!({"maxResults": 2});
        if let Some(token) = &token {
            request["nextToken"] = json!(token);
        }
        let page = h.ok("ListEnvironmentTemplates", request).await;
        let items = page["templates"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(
            items
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        match page.get("nextToken").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let (kind, _) = h
        .err("ListEnvironmentTemplates", json!({"nextToken": "bm9wZQ=="}))
        .await;
    assert_eq!(kind, "ValidationException");
    let (kind, message) = h
        .err("ListEnvironmentTemplates", json!({"maxResults": 0}))
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(message.contains("maxResults"), "{message}");
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let h = Harness::new();
    let cases = [
        (json!({"name": "bad name"}), "name:"),
        (json!({"name": ""}), "name:"),
        (json!({"name": "x".repeat(101)}), "name:"),
        (json!({}), "missing field `name`"),
        (
            json!({"name": "ok", "provisioning": "SELF"}),
            "provisioning: unknown variant",
        ),
        (
            json!({"name": "ok", "description": "x".repeat(501)}),
            "description:",
        ),
        (
            json!({"name": "ok", "encryptionKey": "nope"}),
            "encryptionKey:",
        ),
        (
            json!({"name": "ok", "tags": [{"key": "", "value": "v"}]}),
            "tags[0].key:",
        ),
    ];
    for (body, expected) in cases {
        let (kind, message) = h.err("CreateEnvironmentTemplate", body.clone()).await;
        assert_eq!(kind, "ValidationException", "{body}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    let (status, value) = h
        .raw(
            Some("AwsProton20200720.CreateEnvironmentTemplate"),
            "{not json".into(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["__type"], "SerializationException");
    assert!(
        value["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    // A member of the wrong JSON type is the protocol's refusal too, in the model's words.
    for (operation, body, member) in [
        ("ListEnvironments", r#""just text""#, "expected an object"),
        ("ListEnvironments", r#"{"maxResults": "ten"}"#, "maxResults"),
        ("CreateEnvironmentTemplate", r#"{"name": 5}"#, "name"),
    ] {
        let (status, value) = h
            .raw(Some(&format!("AwsProton20200720.{operation}")), body.into())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
        assert_eq!(value["__type"], "SerializationException", "{value}");
        let message = value["message"].as_str().unwrap();
        assert!(message.contains(member), "{message}");
        assert!(
            !message.contains("struct") && !message.contains("Listing") && !message.contains("i64"),
            "{message}"
        );
    }
    let listed = h.ok("ListEnvironmentTemplates", json!({})).await;
    assert_eq!(listed["templates"], json!([]));
}

#[tokio::test]
async fn unknown_and_unimplemented_operations_are_told_apart() {
    let h = Harness::new();
    let (status, value) = h
        .raw(Some("AwsProton20200720.MakeCoffee"), "{}".into())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["__type"], "UnknownOperationException");
    let (status, value) = h.raw(None, "{}".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["__type"], "UnknownOperationException");
    let (status, value) = h
        .raw(Some("AwsProton20200720.GetRepository"), "{}".into())
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(value["__type"], "NotImplementedException");
    assert!(value["message"].as_str().unwrap().contains("GetRepository"));
}

#[tokio::test]
async fn bad_bundles_are_refused_with_the_file_and_leave_nothing_behind() {
    let h = Harness::new();
    h.ok("CreateEnvironmentTemplate", json!({"name": "vpc"}))
        .await;
    let file = tar::EntryType::Regular;
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "missing.tar.gz",
            vec![],
            "no object s3://src/missing.tar.gz",
        ),
        ("zip.tar.gz", b"PK\x03\x04".to_vec(), "not a gzip"),
        ("escape.tar.gz", pack(&[("../x", b"x", file)]), "climbs out"),
        (
            "no-type.tar.gz",
            pack(&[
                (
                    "schema/schema.yaml",
                    b"schema:\n  format:\n    openapi: \"3.0.0\"\n  types: {}\n",
                    file,
                ),
                ("infrastructure/manifest.yaml", MANIFEST.as_bytes(), file),
                ("infrastructure/cloudformation.yaml", b"x", file),
            ]),
            "schema/schema.yaml: schema.environment_input_type is missing",
        ),
        (
            "not-yaml.tar.gz",
            pack(&[("schema/schema.yaml", b"schema: [", file)]),
            "schema/schema.yaml: not a valid schema",
        ),
    ];
    for (key, bytes, expected) in bad {
        if !bytes.is_empty() {
            h.bundles.put("src", key, bytes);
        }
        let (kind, message) = h
            .err(
                "CreateEnvironmentTemplateVersion",
                json!({"templateName": "vpc", "source": {"s3": {"bucket": "src", "key": key}}}),
            )
            .await;
        assert_eq!(kind, "ValidationException", "{key}");
        assert!(message.contains(expected), "{key}: {message}");
    }
    let listed = h
        .ok(
            "ListEnvironmentTemplateVersions",
            json!({"templateName": "vpc"}),
        )
        .await;
    assert_eq!(listed["templateVersions"], json!([]));
    assert!(h.bundles.keys("paved-bundles").is_empty(), "no bundle kept");
    // The failed attempts did not use up version numbers.
    let created = h.env_template_with_version().await;
    assert_eq!(created["environmentTemplateVersion"]["majorVersion"], "1");
}

#[tokio::test]
async fn a_client_token_replays_the_same_version_and_refuses_other_parameters() {
    let h = Harness::new();
    h.ok("CreateEnvironmentTemplate", json!({"name": "vpc"}))
        .await;
    let request = json!({"templateName": "vpc", "clientToken": "t-1", "source": {"s3": {"bucket": "src", "key": "env.tar.gz"}}});
    let first = h
        .ok("CreateEnvironmentTemplateVersion", request.clone())
        .await;
    let again = h
        .ok("CreateEnvironmentTemplateVersion", request.clone())
        .await;
    assert_eq!(first, again);
    let mut changed = request.clone();
    changed["description"] = json!("other");
    let (kind, message) = h.err("CreateEnvironmentTemplateVersion", changed).await;
    assert_eq!(kind, "ValidationException");
    assert!(message.contains("clientToken"), "{message}");
    let listed = h
        .ok(
            "ListEnvironmentTemplateVersions",
            json!({"templateName": "vpc"}),
        )
        .await;
    assert_eq!(listed["templateVersions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_incompatible_minor_is_refused_and_suggests_a_major() {
    let h = Harness::new();
    h.env_template_with_version().await;
    let file = tar::EntryType::Regular;
    let retyped = ENV_SCHEMA.replace(
        "type: string\n          default: 10.0.0.0/16",
        "type: number",
    );
    h.bundles.put(
        "src",
        "v2.tar.gz",
        pack(&[
            ("schema/schema.yaml", retyped.as_bytes(), file),
            ("infrastructure/manifest.yaml", MANIFEST.as_bytes(), file),
            ("infrastructure/cloudformation.yaml", b"x", file),
        ]),
    );
    let source = json!({"s3": {"bucket": "src", "key": "v2.tar.gz"}});
    let (kind, message) = h
        .err(
            "CreateEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "majorVersion": "1", "source": source}),
        )
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(
        message.contains("\"cidr\" changed type from string to number"),
        "{message}"
    );
    assert!(message.contains("new major version"), "{message}");
    let major = h
        .ok(
            "CreateEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "source": source}),
        )
        .await;
    assert_eq!(major["environmentTemplateVersion"]["majorVersion"], "2");
}

#[tokio::test]
async fn service_versions_need_existing_compatible_environment_majors() {
    let h = Harness::new();
    h.env_template_with_version().await;
    h.ok("CreateServiceTemplate", json!({"name": "web"})).await;
    let source = json!({"s3": {"bucket": "src", "key": "svc.tar.gz"}});
    let (kind, message) = h
        .err(
            "CreateServiceTemplateVersion",
            json!({"templateName": "web", "source": source}),
        )
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(
        message.contains("compatibleEnvironmentTemplates is required"),
        "{message}"
    );
    for (compatible, expected) in [
        (
            json!([{"templateName": "nope", "majorVersion": "1"}]),
            "environment template nope does not exist",
        ),
        (
            json!([{"templateName": "vpc", "majorVersion": "2"}]),
            "has no major version 2",
        ),
        (json!([]), "1 to 10 entries"),
    ] {
        let (kind, message) = h
            .err(
                "CreateServiceTemplateVersion",
                json!({"templateName": "web", "source": source, "compatibleEnvironmentTemplates": compatible}),
            )
            .await;
        assert_eq!(kind, "ValidationException");
        assert!(message.contains(expected), "{message}");
    }
    let created = h
        .ok(
            "CreateServiceTemplateVersion",
            json!({
                "templateName": "web", "source": source,
                "compatibleEnvironmentTemplates": [{"templateName": "vpc", "majorVersion": "1"}],
                "supportedComponentSources": ["DIRECTLY_DEFINED"],
            }),
        )
        .await;
    let version = &created["serviceTemplateVersion"];
    assert_eq!(
        version["compatibleEnvironmentTemplates"],
        json!([{"templateName": "vpc", "majorVersion": "1"}])
    );
    assert_eq!(
        version["supportedComponentSources"],
        json!(["DIRECTLY_DEFINED"])
    );
    assert_eq!(version["status"], "DRAFT");
}

#[tokio::test]
async fn a_service_template_with_its_own_pipeline_needs_pipeline_infrastructure() {
    let h = Harness::new();
    h.env_template_with_version().await;
    let file = tar::EntryType::Regular;
    h.bundles.put(
        "src",
        "no-pipeline.tar.gz",
        pack(&[
            ("schema/schema.yaml", SVC_SCHEMA.as_bytes(), file),
            (
                "instance_infrastructure/manifest.yaml",
                MANIFEST.as_bytes(),
                file,
            ),
            ("instance_infrastructure/cloudformation.yaml", b"x", file),
        ]),
    );
    let request = |name: &str| {
        json!({"templateName": name, "source": {"s3": {"bucket": "src", "key": "no-pipeline.tar.gz"}},
               "compatibleEnvironmentTemplates": [{"templateName": "vpc", "majorVersion": "1"}]})
    };
    h.ok("CreateServiceTemplate", json!({"name": "managed"}))
        .await;
    let (_, message) = h
        .err("CreateServiceTemplateVersion", request("managed"))
        .await;
    assert!(
        message.contains("pipeline_infrastructure/ is missing"),
        "{message}"
    );
    h.ok(
        "CreateServiceTemplate",
        json!({"name": "own", "pipelineProvisioning": "CUSTOMER_MANAGED"}),
    )
    .await;
    h.ok("CreateServiceTemplateVersion", request("own")).await;
    let (_, message) = h
        .err(
            "CreateEnvironmentTemplate",
            json!({"name": "x", "pipelineProvisioning": "CUSTOMER_MANAGED"}),
        )
        .await;
    assert!(message.contains("pipelineProvisioning"), "{message}");
}

#[tokio::test]
async fn deletes_follow_the_recommended_version_rules_and_return_the_resource() {
    let h = Harness::new();
    h.env_template_with_version().await;
    let source = json!({"s3": {"bucket": "src", "key": "env.tar.gz"}});
    h.ok(
        "CreateEnvironmentTemplateVersion",
        json!({"templateName": "vpc", "majorVersion": "1", "source": source}),
    )
    .await;
    h.publish("vpc", "1", "0").await;
    h.publish("vpc", "1", "1").await;
    assert_eq!(h.bundles.keys("paved-bundles").len(), 2);

    let (kind, message) = h
        .err("DeleteEnvironmentTemplate", json!({"name": "vpc"}))
        .await;
    assert_eq!(kind, "ConflictException");
    assert!(message.contains("still has versions 1.0, 1.1"), "{message}");
    let (kind, message) = h
        .err(
            "DeleteEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "majorVersion": "1", "minorVersion": "1"}),
        )
        .await;
    assert_eq!(kind, "ConflictException");
    assert!(message.contains("recommended"), "{message}");

    let deleted = h
        .ok(
            "DeleteEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "majorVersion": "1", "minorVersion": "0"}),
        )
        .await;
    assert_eq!(deleted["environmentTemplateVersion"]["minorVersion"], "0");
    h.ok(
        "DeleteEnvironmentTemplateVersion",
        json!({"templateName": "vpc", "majorVersion": "1", "minorVersion": "1"}),
    )
    .await;
    assert!(
        h.bundles.keys("paved-bundles").is_empty(),
        "kept bundles are removed with their versions"
    );
    let (kind, _) = h
        .err(
            "GetEnvironmentTemplateVersion",
            json!({"templateName": "vpc", "majorVersion": "1", "minorVersion": "1"}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
    let deleted = h
        .ok("DeleteEnvironmentTemplate", json!({"name": "vpc"}))
        .await;
    assert_eq!(deleted["environmentTemplate"]["name"], "vpc");
    let (kind, _) = h
        .err("GetEnvironmentTemplate", json!({"name": "vpc"}))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn update_template_changes_metadata_only() {
    let h = Harness::new();
    h.ok(
        "CreateEnvironmentTemplate",
        json!({"name": "vpc", "description": "old"}),
    )
    .await;
    let updated = h
        .ok(
            "UpdateEnvironmentTemplate",
            json!({"name": "vpc", "description": "new", "displayName": "VPC"}),
        )
        .await;
    assert_eq!(updated["environmentTemplate"]["description"], "new");
    assert_eq!(updated["environmentTemplate"]["displayName"], "VPC");
    let (kind, _) = h
        .err(
            "UpdateEnvironmentTemplate",
            json!({"name": "nope", "description": "x"}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

/// Every operation of the typed list reaches the dispatcher: those paved has built answer as
/// themselves (a validation error for an empty body, at most), the rest NotImplemented.
#[tokio::test]
async fn every_operation_of_the_model_is_dispatched_or_named_as_not_implemented() {
    let h = Harness::new();
    assert_eq!(super::Operation::ALL.len(), 87);
    let mut built = Vec::new();
    let mut not_built = Vec::new();
    for operation in super::Operation::ALL {
        let (status, value) = h.call(operation.name(), json!({})).await;
        assert_ne!(
            value["__type"], "UnknownOperationException",
            "{operation:?}"
        );
        if status == StatusCode::NOT_IMPLEMENTED {
            assert!(
                value["message"]
                    .as_str()
                    .unwrap()
                    .contains(operation.name()),
                "{value}"
            );
            not_built.push(operation.name());
        } else {
            built.push(operation.name());
        }
    }
    assert_eq!(built.len(), 61, "{built:?}");
    assert_eq!(not_built.len(), 26, "{not_built:?}");
    for operation in [
        "GetRepository",
        "ListRepositories",
        "CreateTemplateSyncConfig",
    ] {
        assert!(not_built.contains(&operation), "{operation}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_with_a_proton_error_and_changes_nothing() {
    let h = Harness::new();
    let name = "x".repeat(super::MAX_BODY_BYTES + 1);
    let (status, value) = h
        .raw(
            Some("AwsProton20200720.CreateEnvironmentTemplate"),
            json!({ "name": name }).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["__type"], "ValidationException");
    assert!(
        value["message"].as_str().unwrap().contains("at most"),
        "{value}"
    );
    let listed = h.ok("ListEnvironmentTemplates", json!({})).await;
    assert_eq!(listed["templates"], json!([]));
}

#[tokio::test]
async fn tags_set_on_create_are_listed_in_pages_changed_and_limited() {
    let h = Harness::new();
    let arn = "arn:aws:proton:us-east-1:123456789012:environment-template/vpc";
    h.ok(
        "CreateEnvironmentTemplate",
        json!({"name": "vpc", "tags": [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}]}),
    )
    .await;
    h.ok(
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"key": "c", "value": "3"}, {"key": "a", "value": "one"}]}),
    )
    .await;
    let first = h
        .ok(
            "ListTagsForResource",
            json!({"resourceArn": arn, "maxResults": 2}),
        )
        .await;
    assert_eq!(
        first["tags"],
        json!([{"key": "a", "value": "one"}, {"key": "b", "value": "2"}])
    );
    let token = first["nextToken"].as_str().unwrap();
    let rest = h
        .ok(
            "ListTagsForResource",
            json!({"resourceArn": arn, "maxResults": 2, "nextToken": token}),
        )
        .await;
    assert_eq!(rest, json!({"tags": [{"key": "c", "value": "3"}]}));
    h.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["b", "never-set"]}),
    )
    .await;
    for (operation, body, needle) in [
        (
            "ListTagsForResource",
            json!({"resourceArn": arn, "nextToken": "Zm9yZ2Vk"}),
            "nextToken",
        ),
        (
            "ListTagsForResource",
            json!({"resourceArn": arn, "maxResults": 0}),
            "maxResults",
        ),
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"key": "aws:cost", "value": "x"}]}),
            "reserved",
        ),
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"key": "k".repeat(129), "value": "x"}]}),
            "tags",
        ),
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"key": "k", "value": "v".repeat(257)}]}),
            "tags",
        ),
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": (0..49).map(|i| json!({"key": format!("k{i}"), "value": ""})).collect::<Vec<_>>()}),
            "at most 50",
        ),
        (
            "UntagResource",
            json!({"resourceArn": arn, "tagKeys": (0..51).map(|i| format!("k{i}")).collect::<Vec<_>>()}),
            "tagKeys",
        ),
    ] {
        let (kind, message) = h.err(operation, body).await;
        assert_eq!(kind, "ValidationException", "{operation}: {message}");
        assert!(message.contains(needle), "{operation}: {message}");
    }
    // None of the refused calls changed anything.
    let listed = h
        .ok("ListTagsForResource", json!({"resourceArn": arn}))
        .await;
    assert_eq!(
        listed,
        json!({"tags": [{"key": "a", "value": "one"}, {"key": "c", "value": "3"}]})
    );
    let (kind, _) = h
        .err(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:proton:us-east-1:123456789012:service/none"}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn model_limits_on_tags_and_repository_fields_are_validation_errors() {
    let h = Harness::new();
    let tags: Vec<Value> = (0..9000)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    let (kind, message) = h
        .err(
            "CreateEnvironmentTemplate",
            json!({"name": "vpc", "tags": tags}),
        )
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(
        message.contains("tags") && message.contains("at most 50"),
        "{message}"
    );
    let service = |member: &str, value: Value| {
        let mut body = json!({
            "name": "web", "templateName": "web", "templateMajorVersion": "1",
            "spec": "proton: ServiceSpec\ninstances: []\n",
            "repositoryConnectionArn": "arn:aws:codestar-connections:us-east-1:123456789012:connection/x",
            "repositoryId": "acme/web", "branchName": "main",
        });
        body[member] = value;
        body
    };
    for (member, value) in [
        ("branchName", json!("x".repeat(200_000))),
        ("branchName", json!("main\n  Evil: true")),
        ("repositoryId", json!("acme/web'\n")),
        ("repositoryConnectionArn", json!("not an arn")),
    ] {
        let (kind, message) = h.err("CreateService", service(member, value)).await;
        assert_eq!(kind, "ValidationException", "{member}");
        assert!(message.contains(member), "{member}: {message}");
    }
    let listed = h.ok("ListEnvironmentTemplates", json!({})).await;
    assert_eq!(listed["templates"], json!([]));
}

#[tokio::test]
async fn roles_that_are_not_iam_roles_of_the_account_are_refused_before_anything_is_written() {
    let h = Harness::new();
    for (member, role, why) in [
        (
            "protonServiceRoleArn",
            "arn:aws:sns:us-east-1:123456789012:topic",
            "not an IAM role",
        ),
        (
            "protonServiceRoleArn",
            "arn:aws:iam::210987654321:role/proton",
            "account 210987654321",
        ),
        (
            "componentRoleArn",
            "arn:aws:iam::123456789012:role/OrganizationAccountAccessRole",
            "administrator role",
        ),
    ] {
        let mut body = json!({
            "name": "dev", "templateName": "vpc", "templateMajorVersion": "1",
            "spec": "proton: EnvironmentSpec\nspec: {}\n",
            "protonServiceRoleArn": "arn:aws:iam::123456789012:role/proton",
        });
        body[member] = json!(role);
        let (kind, message) = h.err("CreateEnvironment", body).await;
        assert_eq!(kind, "ValidationException");
        assert!(
            message.starts_with(member) && message.contains(why),
            "{message}"
        );
    }
    let listed = h.ok("ListEnvironments", json!({})).await;
    assert_eq!(listed["environments"], json!([]));
}

#[tokio::test]
async fn provisioning_paved_does_not_do_yet_is_refused_by_name_not_dropped() {
    let h = Harness::new();
    h.env_template_with_version().await;
    h.publish("vpc", "1", "0").await;
    for (member, value) in [
        (
            "provisioningRepository",
            json!({"provider": "GITHUB", "name": "acme/infra", "branch": "main"}),
        ),
        (
            "codebuildRoleArn",
            json!("arn:aws:iam::123456789012:role/paved-build"),
        ),
        ("environmentAccountConnectionId", json!("conn-1")),
    ] {
        let mut body = json!({
            "name": "dev", "templateName": "vpc", "templateMajorVersion": "1",
            "spec": "proton: EnvironmentSpec\nspec: {}\n",
            "protonServiceRoleArn": "arn:aws:iam::123456789012:role/proton",
        });
        body[member] = value;
        let (kind, message) = h.err("CreateEnvironment", body).await;
        assert_eq!(kind, "ValidationException");
        assert!(
            message.starts_with(member) && message.contains("does not support"),
            "{message}"
        );
    }
    let listed = h.ok("ListEnvironments", json!({})).await;
    assert_eq!(listed["environments"], json!([]));
}

/// A service template `web` (version 1.0, published) on the environment template `vpc`, and
/// environments `dev` (tagged stage=dev) and `prod` (stage=prod).
async fn catalog_with_environments(h: &Harness) {
    h.env_template_with_version().await;
    h.publish("vpc", "1", "0").await;
    h.ok("CreateServiceTemplate", json!({"name": "web"})).await;
    h.ok(
        "CreateServiceTemplateVersion",
        json!({
            "templateName": "web", "source": {"s3": {"bucket": "src", "key": "svc.tar.gz"}},
            "compatibleEnvironmentTemplates": [{"templateName": "vpc", "majorVersion": "1"}],
        }),
    )
    .await;
    h.ok(
        "UpdateServiceTemplateVersion",
        json!({"templateName": "web", "majorVersion": "1", "minorVersion": "0", "status": "PUBLISHED"}),
    )
    .await;
    for (name, stage) in [("dev", "dev"), ("prod", "prod")] {
        h.ok(
            "CreateEnvironment",
            json!({
                "name": name, "templateName": "vpc", "templateMajorVersion": "1",
                "spec": "proton: EnvironmentSpec\nspec: {}\n",
                "protonServiceRoleArn": "arn:aws:iam::123456789012:role/proton",
                "tags": [{"key": "stage", "value": stage}],
            }),
        )
        .await;
    }
}

#[tokio::test]
async fn list_service_instances_filters_sorts_and_pages_as_the_model_says() {
    let h = Harness::new();
    catalog_with_environments(&h).await;
    for service in ["alpha", "beta", "gamma"] {
        let mut body = service_body(service, "dev");
        body["spec"] = json!(format!(
            "proton: ServiceSpec\npipeline:\n  dockerfile: Dockerfile\ninstances:\n  - name: {service}-dev\n    environment: dev\n  - name: {service}-prod\n    environment: prod\n"
        ));
        h.ok("CreateService", body).await;
    }
    let names = |listed: &Value| -> Vec<String> {
        listed["serviceInstances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Page size 1 over every service: six pages, in service then instance order.
    let (mut all, mut token) = (Vec::new(), None::<String>);
    loop {
        let mut body = json!({"maxResults": 1});
        if let Some(token) = &token {
            body["nextToken"] = json!(token);
        }
        let listed = h.ok("ListServiceInstances", body).await;
        assert_eq!(names(&listed).len(), 1, "{listed}");
        all.extend(names(&listed));
        match listed["nextToken"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        all,
        [
            "alpha-dev",
            "alpha-prod",
            "beta-dev",
            "beta-prod",
            "gamma-dev",
            "gamma-prod"
        ]
    );
    let filtered = |filters: Value| {
        let h = &h;
        async move {
            names(
                &h.ok("ListServiceInstances", json!({"filters": filters}))
                    .await,
            )
        }
    };
    assert_eq!(
        filtered(json!([{"key": "environmentName", "value": "prod"}])).await,
        ["alpha-prod", "beta-prod", "gamma-prod"]
    );
    // Two values of one key: either; two keys: both.
    assert_eq!(
        filtered(json!([
            {"key": "serviceName", "value": "alpha"},
            {"key": "serviceName", "value": "gamma"},
            {"key": "environmentName", "value": "dev"},
        ]))
        .await,
        ["alpha-dev", "gamma-dev"]
    );
    assert_eq!(
        filtered(json!([{"key": "deployedTemplateVersionStatus", "value": "PUBLISHED"}]))
            .await
            .len(),
        6
    );
    assert!(
        filtered(json!([{"key": "createdAtBefore", "value": "2000-01-01T00:00:00Z"}]))
            .await
            .is_empty()
    );
    let sorted = h
        .ok(
            "ListServiceInstances",
            json!({"serviceName": "beta", "sortBy": "name", "sortOrder": "DESCENDING"}),
        )
        .await;
    assert_eq!(names(&sorted), ["beta-prod", "beta-dev"]);
    // Every bound is the model's, and a token answers only the listing that issued it.
    let first = h.ok("ListServiceInstances", json!({"maxResults": 2})).await;
    let token = first["nextToken"].as_str().unwrap();
    for (body, member) in [
        (json!({"maxResults": 0}), "maxResults"),
        (json!({"maxResults": 101}), "maxResults"),
        (json!({"nextToken": "Zm9yZ2Vk"}), "nextToken"),
        (
            json!({"nextToken": token, "serviceName": "alpha"}),
            "nextToken",
        ),
        (
            json!({"filters": [{"key": "colour", "value": "x"}]}),
            "filters",
        ),
        (
            json!({"filters": [{"key": "createdAtAfter", "value": "yesterday"}]}),
            "filters",
        ),
        (json!({"sortBy": "size"}), "sortBy"),
        (json!({"sortOrder": "UP"}), "sortOrder"),
    ] {
        let (kind, message) = h.err("ListServiceInstances", body.clone()).await;
        assert_eq!(kind, "ValidationException", "{body}");
        assert!(message.starts_with(member), "{body}: {message}");
    }
    let (kind, _) = h
        .err("ListServiceInstances", json!({"serviceName": "nope"}))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn the_pipeline_role_of_new_services_comes_from_the_account_settings() {
    let h = Harness::new();
    let got = h.ok("GetAccountSettings", json!({})).await;
    assert_eq!(
        got,
        json!({"accountSettings": {"pipelineServiceRoleArn": "arn:aws:iam::123456789012:role/pipeline"}}),
        "paved's own role until one is set"
    );
    let role = "arn:aws:iam::123456789012:role/team-pipelines";
    let set = h
        .ok(
            "UpdateAccountSettings",
            json!({"pipelineServiceRoleArn": role}),
        )
        .await;
    assert_eq!(set["accountSettings"]["pipelineServiceRoleArn"], role);
    catalog_with_environments(&h).await;
    h.ok("CreateService", service_body("shop", "dev")).await;
    let stored = h
        .app
        .store
        .service(&crate::domain::names::ResourceName::parse("shop").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.pipeline.unwrap().role_arn, role);
    for (body, member) in [
        (
            json!({"pipelineServiceRoleArn": "not-an-arn"}),
            "pipelineServiceRoleArn",
        ),
        (
            json!({"pipelineServiceRoleArn": "arn:aws:sns:us-east-1:123456789012:topic"}),
            "pipelineServiceRoleArn",
        ),
        (
            json!({"pipelineProvisioningRepository": {"provider": "GITHUB", "name": "a/b", "branch": "main"}}),
            "pipelineProvisioningRepository",
        ),
        (
            json!({"pipelineCodebuildRoleArn": "arn:aws:iam::123456789012:role/build"}),
            "pipelineCodebuildRoleArn",
        ),
    ] {
        let (kind, message) = h.err("UpdateAccountSettings", body.clone()).await;
        assert_eq!(kind, "ValidationException", "{body}");
        assert!(message.starts_with(member), "{message}");
    }
    denied(
        &h,
        callers::DEVELOPER,
        "UpdateAccountSettings",
        json!({"pipelineServiceRoleArn": ""}),
    )
    .await;
    assert_eq!(
        h.ok("GetAccountSettings", json!({})).await["accountSettings"]["pipelineServiceRoleArn"],
        role,
        "nothing refused was written"
    );
    // "" goes back to paved's own role.
    let reset = h
        .ok(
            "UpdateAccountSettings",
            json!({"pipelineServiceRoleArn": ""}),
        )
        .await;
    assert_eq!(
        reset["accountSettings"]["pipelineServiceRoleArn"],
        "arn:aws:iam::123456789012:role/pipeline"
    );
}

#[tokio::test]
async fn the_resources_summary_counts_what_is_behind_the_recommended_versions() {
    let h = Harness::new();
    catalog_with_environments(&h).await;
    h.ok("CreateService", service_body("shop", "dev")).await;
    let counts = h.ok("GetResourcesSummary", json!({})).await["counts"].clone();
    assert_eq!(counts["environmentTemplates"], json!({"total": 1}));
    assert_eq!(counts["serviceTemplates"], json!({"total": 1}));
    assert_eq!(counts["environments"], json!({"total": 2}));
    let current =
        json!({"total": 1, "failed": 0, "upToDate": 1, "behindMinor": 0, "behindMajor": 0});
    assert_eq!(counts["serviceInstances"], current);
    assert_eq!(counts["pipelines"], current);
    assert_eq!(counts["services"], current);
    assert_eq!(counts["components"], json!({"total": 0, "failed": 0}));
    // A new minor, published: the instance, the pipeline and so the service are behind it.
    h.ok(
        "CreateServiceTemplateVersion",
        json!({
            "templateName": "web", "majorVersion": "1", "source": {"s3": {"bucket": "src", "key": "svc.tar.gz"}},
            "compatibleEnvironmentTemplates": [{"templateName": "vpc", "majorVersion": "1"}],
        }),
    )
    .await;
    h.ok(
        "UpdateServiceTemplateVersion",
        json!({"templateName": "web", "majorVersion": "1", "minorVersion": "1", "status": "PUBLISHED"}),
    )
    .await;
    let counts = h.ok("GetResourcesSummary", json!({})).await["counts"].clone();
    let behind =
        json!({"total": 1, "failed": 0, "upToDate": 0, "behindMinor": 1, "behindMajor": 0});
    assert_eq!(counts["serviceInstances"], behind);
    assert_eq!(counts["services"], behind);
}

fn service_body(name: &str, environment: &str) -> Value {
    json!({
        "name": name, "templateName": "web", "templateMajorVersion": "1",
        "spec": format!("proton: ServiceSpec\npipeline:\n  dockerfile: Dockerfile\ninstances:\n  - name: {environment}\n    environment: {environment}\n"),
        "repositoryConnectionArn": "arn:aws:codestar-connections:us-east-1:123456789012:connection/x",
        "repositoryId": "org/repo", "branchName": "main",
    })
}

async fn denied(h: &Harness, key: &str, operation: &str, body: Value) -> String {
    let (status, value) = h.call_as(key, operation, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{operation}: {value}");
    assert_eq!(value["__type"], "AccessDeniedException", "{value}");
    value["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn developers_do_what_protons_developer_policy_allowed_and_nothing_else() {
    let h = Harness::new();
    catalog_with_environments(&h).await;
    let (status, created) = h
        .call_as(
            callers::DEVELOPER,
            "CreateService",
            service_body("api", "dev"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, _) = h
        .call_as(
            callers::DEVELOPER,
            "GetServiceInstance",
            json!({"serviceName": "api", "name": "dev"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let message = denied(
        &h,
        callers::DEVELOPER,
        "CreateEnvironment",
        json!({"name": "qa", "templateName": "vpc", "templateMajorVersion": "1", "spec": "proton: EnvironmentSpec\nspec: {}\n"}),
    )
    .await;
    assert_eq!(
        message,
        "User: arn:aws:iam::123456789012:user/paved-developer is not authorized to perform: proton:CreateEnvironment on resource: arn:aws:proton:us-east-1:123456789012:environment/qa (no policy allows it)"
    );
    for (operation, body) in [
        (
            "CreateServiceInstance",
            json!({"serviceName": "api", "name": "prod", "spec": "proton: ServiceSpec\ninstances:\n  - name: prod\n    environment: prod\n"}),
        ),
        ("CreateEnvironmentTemplate", json!({"name": "other"})),
        (
            "TagResource",
            json!({"resourceArn": "arn:aws:proton:us-east-1:123456789012:service/api", "tags": [{"key": "a", "value": "b"}]}),
        ),
        ("DeleteEnvironment", json!({"name": "dev"})),
        (
            "CreateComponent",
            json!({"name": "c", "environmentName": "dev", "manifest": "x", "templateFile": "y"}),
        ),
    ] {
        denied(&h, callers::DEVELOPER, operation, body).await;
    }
    // Nothing the refused calls named was written.
    let environments = h.ok("ListEnvironments", json!({})).await;
    assert_eq!(environments["environments"].as_array().unwrap().len(), 2);
    let (kind, _) = h
        .err(
            "GetServiceInstance",
            json!({"serviceName": "api", "name": "prod"}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn read_only_reads_and_strangers_do_nothing() {
    let h = Harness::new();
    catalog_with_environments(&h).await;
    let (status, listed) = h
        .call_as(callers::READ_ONLY, "ListEnvironments", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    denied(
        &h,
        callers::READ_ONLY,
        "CreateService",
        service_body("api", "dev"),
    )
    .await;
    denied(
        &h,
        callers::READ_ONLY,
        "UpdateEnvironment",
        json!({"name": "dev", "deploymentType": "NONE"}),
    )
    .await;
    denied(&h, callers::STRANGER, "ListEnvironments", json!({})).await;
    let (kind, _) = h.err("GetService", json!({"name": "api"})).await;
    assert_eq!(kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn unsigned_and_forged_calls_are_refused_before_anything_is_read_or_written() {
    let h = Harness::new();
    let request = Request::post("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "x-amz-target",
            "AwsProton20200720.CreateEnvironmentTemplate",
        )
        .body(Body::from(r#"{"name":"vpc"}"#))
        .unwrap();
    let response = router(h.app.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let (status, _) = h
        .call_as(
            "AKIAUNKNOWNKEY000001",
            "CreateEnvironmentTemplate",
            json!({"name": "vpc"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let listed = h.ok("ListEnvironmentTemplates", json!({})).await;
    assert_eq!(listed["templates"], json!([]));
}

#[tokio::test]
async fn a_policy_narrows_developers_to_one_template_and_to_environments_by_tag() {
    let h = Harness::new();
    catalog_with_environments(&h).await;
    let current = h.call_paved("GetAccessPolicy", json!({})).await;
    assert_eq!(current["accessPolicy"]["version"], 0);
    let mut policies = current["accessPolicy"]["policies"]
        .as_str()
        .unwrap()
        .to_string();
    policies.push_str(
        r#"
@id("dev-only")
forbid (principal in Paved::Group::"developers", action, resource is Paved::ServiceInstance)
unless { resource.environment.hasTag("stage") && resource.environment.getTag("stage") == "dev" };

@id("web-only")
forbid (principal in Paved::Group::"developers", action == Paved::Action::"CreateService", resource)
unless { context has "proton:ServiceTemplate" && context["proton:ServiceTemplate"] like "*:service-template/web" };
"#,
    );
    let put = |version: u64| json!({"groups": current["accessPolicy"]["groups"], "policies": policies, "expectedVersion": version});
    let stored = h.call_paved("PutAccessPolicy", put(0)).await;
    assert_eq!(stored["accessPolicy"]["version"], 1);
    assert_eq!(
        stored["accessPolicy"]["updatedBy"]["principalArn"],
        callers::arn(callers::PLATFORM)
    );
    // A second writer who read version 0 is refused; nothing changes.
    let (status, stale) = h
        .raw(Some("Paved20261127.PutAccessPolicy"), put(0).to_string())
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");

    let message = denied(
        &h,
        callers::DEVELOPER,
        "CreateService",
        service_body("api", "prod"),
    )
    .await;
    assert!(message.contains("denied by policy dev-only"), "{message}");
    let (status, _) = h
        .call_as(
            callers::DEVELOPER,
            "CreateService",
            service_body("api", "dev"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The platform team is not narrowed.
    let (status, _) = h
        .call_as(
            callers::PLATFORM,
            "CreateService",
            service_body("api-prod", "prod"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Developers may not change the policy back.
    let (status, _) = h
        .raw_as(
            callers::DEVELOPER,
            Some("Paved20261127.PutAccessPolicy"),
            put(1).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A policy that names no real action is refused, with the reason.
    let bad = json!({"groups": current["accessPolicy"]["groups"], "policies": "permit (principal, action == Paved::Action::\"Deploy\", resource);", "expectedVersion": 1});
    let (status, refused) = h
        .raw(Some("Paved20261127.PutAccessPolicy"), bad.to_string())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("is not an action"),
        "{refused}"
    );
    let versions = h.call_paved("ListAccessPolicyVersions", json!({})).await;
    let numbers: Vec<u64> = versions["accessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 0]);
}

#[tokio::test]
async fn roles_may_be_named_only_by_callers_allowed_to_pass_them() {
    let h = Harness::new();
    let current = h.call_paved("GetAccessPolicy", json!({})).await;
    // The platform team, except for one role.
    let policies = format!(
        "{}\n@id(\"no-admin-role\")\nforbid (principal, action == Paved::Action::\"PassRole\", resource == Paved::Role::\"arn:aws:iam::123456789012:role/admin\");\n",
        current["accessPolicy"]["policies"].as_str().unwrap()
    );
    h.call_paved(
        "PutAccessPolicy",
        json!({"groups": current["accessPolicy"]["groups"], "policies": policies, "expectedVersion": 0}),
    )
    .await;
    h.env_template_with_version().await;
    h.publish("vpc", "1", "0").await;
    let body = |role: &str| {
        json!({
            "name": "dev", "templateName": "vpc", "templateMajorVersion": "1",
            "spec": "proton: EnvironmentSpec\nspec: {}\n", "protonServiceRoleArn": role,
        })
    };
    let message = denied(
        &h,
        callers::PLATFORM,
        "CreateEnvironment",
        body("arn:aws:iam::123456789012:role/admin"),
    )
    .await;
    assert!(
        message.contains("proton:PassRole on resource: arn:aws:iam::123456789012:role/admin"),
        "{message}"
    );
    h.ok(
        "CreateEnvironment",
        body("arn:aws:iam::123456789012:role/proton"),
    )
    .await;
}
