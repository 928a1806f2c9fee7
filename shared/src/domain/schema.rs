//! Template schemas: the OpenAPI 3 Schema-object subset that Proton bundles use, parsed and checked.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Which input type of a schema a value is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRole {
    Environment,
    Service,
    Pipeline,
}

impl InputRole {
    pub fn key(self) -> &'static str {
        match self {
            Self::Environment => "environment_input_type",
            Self::Service => "service_input_type",
            Self::Pipeline => "pipeline_input_type",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct SchemaDocument {
    schema: SchemaBody,
}

#[derive(Debug, Clone, Deserialize)]
struct SchemaBody {
    format: Format,
    environment_input_type: Option<String>,
    service_input_type: Option<String>,
    pipeline_input_type: Option<String>,
    #[serde(default)]
    types: BTreeMap<String, PropertySchema>,
}

#[derive(Debug, Clone, Deserialize)]
struct Format {
    openapi: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
}

impl JsonType {
    fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

/// One Schema object: a property, an array's items, or an input type.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertySchema {
    #[serde(rename = "type")]
    pub ty: Option<JsonType>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub default: Option<Value>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<Value>>,
    pub pattern: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub items: Option<Box<PropertySchema>>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertySchema>,
    #[serde(default)]
    pub required: Vec<String>,
}

/// A checked template schema.
#[derive(Debug, Clone)]
pub struct TemplateSchema {
    inputs: BTreeMap<&'static str, (String, PropertySchema)>,
}

/// The file every schema error is reported against.
pub const SCHEMA_FILE: &str = "schema/schema.yaml";

/// Nesting deeper than this in a schema is refused (it only serves to exhaust the parser).
const MAX_DEPTH: usize = 32;

impl TemplateSchema {
    /// Parses and checks a schema; `roles` are the input types this kind of template must define
    /// (`required`) or may define (`optional`).
    pub fn parse(
        text: &str,
        required: &[InputRole],
        optional: &[InputRole],
    ) -> Result<Self, String> {
        let document: SchemaDocument = crate::domain::yaml::from_str(text)
            .map_err(|e| format!("{SCHEMA_FILE}: not a valid schema: {e}"))?;
        let body = document.schema;
        if body.format.openapi != "3.0.0" {
            return Err(format!(
                "{SCHEMA_FILE}: schema.format.openapi must be \"3.0.0\", got {:?}",
                body.format.openapi
            ));
        }
        let mut inputs = BTreeMap::new();
        for role in required.iter().chain(optional) {
            let type_name = match role {
                InputRole::Environment => &body.environment_input_type,
                InputRole::Service => &body.service_input_type,
                InputRole::Pipeline => &body.pipeline_input_type,
            };
            let Some(type_name) = type_name else {
                if required.contains(role) {
                    return Err(format!(
                        "{SCHEMA_FILE}: schema.{} is missing: the schema defines no input type for this template",
                        role.key()
                    ));
                }
                continue;
            };
            let Some(definition) = body.types.get(type_name) else {
                return Err(format!(
                    "{SCHEMA_FILE}: schema.{} names type {type_name:?}, which schema.types does not define",
                    role.key()
                ));
            };
            let path = format!("schema.types.{type_name}");
            if !matches!(definition.ty, None | Some(JsonType::Object)) {
                return Err(format!("{SCHEMA_FILE}: {path}.type must be object"));
            }
            check_definition(definition, &path, 0).map_err(|e| format!("{SCHEMA_FILE}: {e}"))?;
            inputs.insert(role.key(), (type_name.clone(), definition.clone()));
        }
        Ok(Self { inputs })
    }

    /// The input type for a role, if the schema defines one.
    pub fn input(&self, role: InputRole) -> Option<&PropertySchema> {
        self.inputs.get(role.key()).map(|(_, schema)| schema)
    }

    /// Explains why this schema, as a new minor version, breaks inputs valid for `previous`.
    pub fn incompatibilities_with(&self, previous: &TemplateSchema) -> Vec<String> {
        let mut problems = Vec::new();
        for (role, (_, old)) in &previous.inputs {
            let Some((_, new)) = self.inputs.get(role) else {
                problems.push(format!("{role} was removed"));
                continue;
            };
            for (name, old_property) in &old.properties {
                match new.properties.get(name) {
                    None => problems.push(format!("{role}: input {name:?} was removed")),
                    Some(new_property) if new_property.ty != old_property.ty => {
                        problems.push(format!(
                            "{role}: input {name:?} changed type from {} to {}",
                            type_name(old_property.ty),
                            type_name(new_property.ty)
                        ))
                    }
                    Some(_) => {}
                }
            }
            for name in &new.required {
                let was_required = old.required.contains(name);
                let has_default = new
                    .properties
                    .get(name)
                    .is_some_and(|p| p.default.is_some());
                if !was_required && !has_default {
                    problems.push(format!(
                        "{role}: input {name:?} became required without a default"
                    ));
                }
            }
        }
        problems
    }
}

fn type_name(ty: Option<JsonType>) -> &'static str {
    ty.map_or("untyped", JsonType::name)
}

fn check_definition(schema: &PropertySchema, path: &str, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: nested deeper than {MAX_DEPTH} levels"));
    }
    if let Some(pattern) = &schema.pattern {
        regex::Regex::new(pattern)
            .map_err(|e| format!("{path}.pattern is not a valid regular expression: {e}"))?;
    }
    if let (Some(min), Some(max)) = (schema.min_length, schema.max_length)
        && min > max
    {
        return Err(format!(
            "{path}: minLength {min} is greater than maxLength {max}"
        ));
    }
    if let (Some(min), Some(max)) = (schema.minimum, schema.maximum)
        && min > max
    {
        return Err(format!(
            "{path}: minimum {min} is greater than maximum {max}"
        ));
    }
    for name in &schema.required {
        if !schema.properties.contains_key(name) {
            return Err(format!(
                "{path}.required names {name:?}, which is not in its properties"
            ));
        }
    }
    if let Some(items) = &schema.items {
        check_definition(items, &format!("{path}.items"), depth + 1)?;
    }
    if schema.ty == Some(JsonType::Array) && schema.items.is_none() {
        return Err(format!("{path}: type array needs items"));
    }
    for (name, property) in &schema.properties {
        check_definition(property, &format!("{path}.properties.{name}"), depth + 1)?;
    }
    if let Some(default) = &schema.default {
        check_value(schema, default, &format!("{path}.default"))?;
    }
    Ok(())
}

/// Checks one value against a Schema object; the error names `path` and the rule it broke.
pub fn check_value(schema: &PropertySchema, value: &Value, path: &str) -> Result<(), String> {
    if let Some(ty) = schema.ty {
        let matches = match ty {
            JsonType::String => value.is_string(),
            JsonType::Number => value.is_number(),
            JsonType::Integer => {
                value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            JsonType::Boolean => value.is_boolean(),
            JsonType::Array => value.is_array(),
            JsonType::Object => value.is_object(),
        };
        if !matches {
            return Err(format!(
                "{path}: must be of type {}, got {}",
                ty.name(),
                describe(value)
            ));
        }
    }
    if let Some(allowed) = &schema.enum_values
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!(
            "{path}: must be one of [{}], got {value}",
            list.join(", ")
        ));
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if let Some(min) = schema.min_length.filter(|min| len < *min) {
            return Err(format!(
                "{path}: must be at least {min} characters long, got {len}"
            ));
        }
        if let Some(max) = schema.max_length.filter(|max| len > *max) {
            return Err(format!(
                "{path}: must be at most {max} characters long, got {len}"
            ));
        }
        if let Some(pattern) = &schema.pattern {
            let regex = regex::Regex::new(pattern)
                .map_err(|e| format!("{path}: the schema's pattern does not compile: {e}"))?;
            if !regex.is_match(text) {
                return Err(format!(
                    "{path}: {text:?} does not match the pattern {pattern}"
                ));
            }
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.minimum.filter(|min| number < *min) {
            return Err(format!("{path}: must be at least {min}, got {number}"));
        }
        if let Some(max) = schema.maximum.filter(|max| number > *max) {
            return Err(format!("{path}: must be at most {max}, got {number}"));
        }
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if let Some(min) = schema.min_items.filter(|min| count < *min) {
            return Err(format!(
                "{path}: must have at least {min} items, got {count}"
            ));
        }
        if let Some(max) = schema.max_items.filter(|max| count > *max) {
            return Err(format!(
                "{path}: must have at most {max} items, got {count}"
            ));
        }
        if let Some(item_schema) = &schema.items {
            for (index, item) in items.iter().enumerate() {
                check_value(item_schema, item, &format!("{path}[{index}]"))?;
            }
        }
    }
    if let Some(object) = value.as_object() {
        for name in &schema.required {
            if !object.contains_key(name) {
                return Err(format!("{path}: required input {name:?} is missing"));
            }
        }
        for (name, property) in &schema.properties {
            if let Some(inner) = object.get(name) {
                check_value(property, inner, &format!("{path}.{name}"))?;
            }
        }
    }
    Ok(())
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENV: &[InputRole] = &[InputRole::Environment];

    fn schema(types: &str) -> String {
        format!(
            "schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: Input\n  types:\n{types}"
        )
    }

    const BASE: &str = "    Input:\n      type: object\n      properties:\n        port:\n          type: number\n          default: 80\n          minimum: 1\n          maximum: 65535\n        name:\n          type: string\n          pattern: \"^[a-z]+$\"\n";

    #[test]
    fn a_sample_schema_parses_and_checks_values() {
        let parsed = TemplateSchema::parse(&schema(BASE), ENV, &[]).unwrap();
        let input = parsed.input(InputRole::Environment).unwrap();
        assert!(check_value(input, &json!({"port": 443, "name": "web"}), "spec").is_ok());
        let err = check_value(input, &json!({"port": 70000}), "spec").unwrap_err();
        assert_eq!(err, "spec.port: must be at most 65535, got 70000");
        let err = check_value(input, &json!({"name": "Web"}), "spec").unwrap_err();
        assert!(
            err.contains("spec.name") && err.contains("pattern"),
            "{err}"
        );
        let err = check_value(input, &json!({"port": "80"}), "spec").unwrap_err();
        assert!(err.contains("must be of type number"), "{err}");
    }

    #[test]
    fn a_schema_without_its_input_type_is_rejected() {
        let text = "schema:\n  format:\n    openapi: \"3.0.0\"\n  types: {}\n";
        let err = TemplateSchema::parse(text, ENV, &[]).unwrap_err();
        assert!(err.contains("environment_input_type is missing"), "{err}");
        let text = schema(BASE).replace(
            "environment_input_type: Input",
            "environment_input_type: Nope",
        );
        let err = TemplateSchema::parse(&text, ENV, &[]).unwrap_err();
        assert!(err.contains("\"Nope\""), "{err}");
    }

    #[test]
    fn bad_patterns_and_defaults_are_reported_with_their_path() {
        let text = schema(&BASE.replace("\"^[a-z]+$\"", "\"([a-z\""));
        let err = TemplateSchema::parse(&text, ENV, &[]).unwrap_err();
        assert!(
            err.contains("schema.types.Input.properties.name.pattern"),
            "{err}"
        );
        let text = schema(&BASE.replace("default: 80", "default: eighty"));
        let err = TemplateSchema::parse(&text, ENV, &[]).unwrap_err();
        assert!(
            err.contains("properties.port.default: must be of type number"),
            "{err}"
        );
    }

    #[test]
    fn a_minor_may_add_optional_inputs_but_not_remove_or_retype() {
        let old = TemplateSchema::parse(&schema(BASE), ENV, &[]).unwrap();
        let added = BASE.to_string() + "        extra:\n          type: string\n";
        let new = TemplateSchema::parse(&schema(&added), ENV, &[]).unwrap();
        assert!(new.incompatibilities_with(&old).is_empty());

        let removed = BASE.split("        name:").next().unwrap();
        let new = TemplateSchema::parse(&schema(removed), ENV, &[]).unwrap();
        assert_eq!(
            new.incompatibilities_with(&old),
            ["environment_input_type: input \"name\" was removed"]
        );

        let retyped = BASE.replace(
            "type: number\n          default: 80\n          minimum: 1\n          maximum: 65535",
            "type: string",
        );
        let new = TemplateSchema::parse(&schema(&retyped), ENV, &[]).unwrap();
        assert!(new.incompatibilities_with(&old)[0].contains("changed type from number to string"));

        let required = BASE.to_string() + "      required: [name]\n";
        let new = TemplateSchema::parse(&schema(&required), ENV, &[]).unwrap();
        assert!(new.incompatibilities_with(&old)[0].contains("became required"));
    }
}
