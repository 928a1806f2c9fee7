//! Specs: the `spec` documents of Create/Update calls, parsed and checked against a schema.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::names::ResourceName;
use super::schema::{PropertySchema, check_value};

/// The model's limit on a spec (characters).
pub const MAX_SPEC_CHARS: usize = 51_200;

/// The value that keeps a field's current value on updates.
pub const CURRENT_VALUE: &str = "${Proton::CURRENT_VAL}";

/// Characters paved uses to trace input values through rendering; inputs may not contain them.
pub const RESERVED: std::ops::RangeInclusive<char> = '\u{E000}'..='\u{E00F}';

pub type Inputs = Map<String, Value>;

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub name: ResourceName,
    pub environment: ResourceName,
    pub inputs: Inputs,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Environment {
        inputs: Inputs,
    },
    Service {
        pipeline: Option<Inputs>,
        instances: Vec<InstanceSpec>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    name: String,
    environment: String,
    #[serde(default)]
    spec: Option<Value>,
}

impl Spec {
    /// Parses a spec document; the error names the member that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let chars = text.chars().count();
        if chars > MAX_SPEC_CHARS {
            return Err(format!(
                "spec: {chars} characters; a spec may be at most {MAX_SPEC_CHARS}"
            ));
        }
        let document: Value =
            super::yaml::from_str(text).map_err(|e| format!("spec: not valid YAML: {e}"))?;
        let Value::Object(mut document) = document else {
            return Err("spec: must be a YAML mapping with a `proton` member".into());
        };
        let kind = document.remove("proton");
        match kind.as_ref().and_then(Value::as_str) {
            Some("EnvironmentSpec") => {
                let inputs = object(document.remove("spec"), "spec")?;
                refuse_extra(&document, &["spec"])?;
                check_reserved(&inputs, "spec")?;
                Ok(Self::Environment { inputs })
            }
            Some("ServiceSpec") => {
                let pipeline = match document.remove("pipeline") {
                    None => None,
                    Some(value) => Some(object(Some(value), "pipeline")?),
                };
                if let Some(pipeline) = &pipeline {
                    check_reserved(pipeline, "pipeline")?;
                }
                let raw = document.remove("instances").unwrap_or(Value::Array(vec![]));
                refuse_extra(&document, &["pipeline", "instances"])?;
                let Value::Array(raw) = raw else {
                    return Err("spec: instances must be a list".into());
                };
                let mut instances = Vec::with_capacity(raw.len());
                for (index, item) in raw.into_iter().enumerate() {
                    let at = format!("instances[{index}]");
                    let item: RawInstance = serde_json::from_value(item).map_err(|e| {
                        format!("{at}: {e}; an instance has name, environment and spec")
                    })?;
                    let name =
                        ResourceName::parse(item.name).map_err(|e| format!("{at}.name: {e}"))?;
                    let environment = ResourceName::parse(item.environment)
                        .map_err(|e| format!("{at}.environment: {e}"))?;
                    let inputs = object(item.spec, &format!("{at}.spec"))?;
                    check_reserved(&inputs, &format!("{at} ({name}).spec"))?;
                    if instances.iter().any(|i: &InstanceSpec| i.name == name) {
                        return Err(format!(
                            "{at}.name: {name} is used by more than one instance"
                        ));
                    }
                    instances.push(InstanceSpec {
                        name,
                        environment,
                        inputs,
                    });
                }
                Ok(Self::Service {
                    pipeline,
                    instances,
                })
            }
            Some(other) => Err(format!(
                "spec: proton must be EnvironmentSpec or ServiceSpec, got {other:?}"
            )),
            None => {
                Err("spec: the `proton` member (EnvironmentSpec or ServiceSpec) is missing".into())
            }
        }
    }
}

fn object(value: Option<Value>, at: &str) -> Result<Inputs, String> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(format!("{at}: must be a mapping of input names to values")),
    }
}

fn refuse_extra(document: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match document.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "spec: unknown member {key:?} (expected {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn check_reserved(inputs: &Inputs, at: &str) -> Result<(), String> {
    fn walk(value: &Value, path: &str) -> Result<(), String> {
        match value {
            Value::String(text) if text.chars().any(|c| RESERVED.contains(&c)) => Err(format!(
                "{path}: contains a character from U+E000 to U+E00F, which paved reserves"
            )),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| walk(v, &format!("{path}[{i}]"))),
            Value::Object(map) => map
                .iter()
                .try_for_each(|(k, v)| walk(v, &format!("{path}.{k}"))),
            _ => Ok(()),
        }
    }
    inputs
        .iter()
        .try_for_each(|(k, v)| walk(v, &format!("{at}.{k}")))
}

/// Fills the schema's defaults into `given` and checks the result; errors start with `at`.
pub fn resolve_inputs(
    schema: Option<&PropertySchema>,
    given: &Inputs,
    at: &str,
) -> Result<Inputs, String> {
    let Some(schema) = schema else {
        if let Some(name) = given.keys().next() {
            return Err(format!("{at}.{name}: this template takes no inputs here"));
        }
        return Ok(Inputs::new());
    };
    let mut inputs = given.clone();
    for (name, property) in &schema.properties {
        if let (None, Some(default)) = (inputs.get(name), &property.default) {
            inputs.insert(name.clone(), default.clone());
        }
    }
    check_value(schema, &Value::Object(inputs.clone()), at)?;
    Ok(inputs)
}

/// Replaces each `${Proton::CURRENT_VAL}` with the field's current value.
pub fn keep_current_values(given: &Inputs, current: &Inputs, at: &str) -> Result<Inputs, String> {
    let mut inputs = given.clone();
    for (name, value) in inputs.iter_mut() {
        if value.as_str() == Some(CURRENT_VALUE) {
            *value = current.get(name).cloned().ok_or_else(|| {
                format!("{at}.{name}: {CURRENT_VALUE} asks to keep a value, but there is none")
            })?;
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::{InputRole, TemplateSchema};
    use serde_json::json;

    const SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  service_input_type: Svc\n  types:\n    Svc:\n      type: object\n      required: [image]\n      properties:\n        port:\n          type: number\n          default: 80\n          maximum: 65535\n        image:\n          type: string\n          minLength: 1\n";

    fn schema() -> TemplateSchema {
        TemplateSchema::parse(SCHEMA, &[InputRole::Service], &[InputRole::Pipeline]).unwrap()
    }

    #[test]
    fn a_service_spec_parses_with_pipeline_and_instances() {
        let spec = Spec::parse(
            "proton: ServiceSpec\npipeline:\n  dockerfile: Dockerfile\ninstances:\n  - name: web-prod\n    environment: prod\n    spec:\n      image: nginx\n",
        )
        .unwrap();
        let Spec::Service {
            pipeline,
            instances,
        } = spec
        else {
            panic!("not a service spec")
        };
        assert_eq!(pipeline.unwrap()["dockerfile"], "Dockerfile");
        assert_eq!(instances[0].name.as_str(), "web-prod");
        assert_eq!(instances[0].inputs["image"], "nginx");
    }

    #[test]
    fn defaults_fill_in_and_rules_name_the_instance_and_field() {
        let schema = schema();
        let input = schema.input(InputRole::Service);
        let given = json!({"image": "nginx"}).as_object().unwrap().clone();
        let resolved = resolve_inputs(input, &given, "instances[0] (web).spec").unwrap();
        assert_eq!(resolved["port"], 80);
        let bad = json!({"image": "nginx", "port": 99999})
            .as_object()
            .unwrap()
            .clone();
        let err = resolve_inputs(input, &bad, "instances[0] (web).spec").unwrap_err();
        assert_eq!(
            err,
            "instances[0] (web).spec.port: must be at most 65535, got 99999"
        );
        let missing = Inputs::new();
        let err = resolve_inputs(input, &missing, "instances[0] (web).spec").unwrap_err();
        assert!(err.contains("required input \"image\" is missing"), "{err}");
    }

    #[test]
    fn bad_specs_are_refused_with_their_member() {
        let cases = [
            ("proton: Nope\n", "EnvironmentSpec or ServiceSpec"),
            ("spec: {}\n", "`proton` member"),
            (
                "proton: ServiceSpec\ninstances: {}\n",
                "instances must be a list",
            ),
            (
                "proton: ServiceSpec\ninstances:\n  - name: a\n",
                "instances[0]",
            ),
            (
                "proton: ServiceSpec\ninstances:\n  - {name: 'bad name', environment: e}\n",
                "instances[0].name",
            ),
            (
                "proton: ServiceSpec\ninstances:\n  - {name: a, environment: e}\n  - {name: a, environment: f}\n",
                "more than one instance",
            ),
            (
                "proton: EnvironmentSpec\nspec: [1]\n",
                "spec: must be a mapping",
            ),
            (
                "proton: EnvironmentSpec\nextra: 1\n",
                "unknown member \"extra\"",
            ),
            (
                "proton: EnvironmentSpec\nspec:\n  x: \"a\u{E000}\"\n",
                "spec.x: contains a character",
            ),
        ];
        for (text, expected) in cases {
            let err = Spec::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let huge = format!(
            "proton: EnvironmentSpec\nspec:\n  x: {}\n",
            "a".repeat(MAX_SPEC_CHARS)
        );
        assert!(Spec::parse(&huge).unwrap_err().contains("at most 51200"));
    }

    #[test]
    fn current_values_are_kept_on_update() {
        let current = json!({"port": 81, "image": "a"})
            .as_object()
            .unwrap()
            .clone();
        let given = json!({"port": CURRENT_VALUE, "image": "b"})
            .as_object()
            .unwrap()
            .clone();
        let kept = keep_current_values(&given, &current, "spec").unwrap();
        assert_eq!(Value::Object(kept), json!({"port": 81, "image": "b"}));
        let given = json!({"new": CURRENT_VALUE}).as_object().unwrap().clone();
        assert!(
            keep_current_values(&given, &current, "spec")
                .unwrap_err()
                .starts_with("spec.new:")
        );
    }
}
