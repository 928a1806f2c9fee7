//! Rendering Jinja-templated CloudFormation as Proton did, with Proton's namespaces and filters,
//! and a guarantee Proton never gave: input values cannot change the template's structure.
//!
//! How the guarantee works: every plain string the template prints is wrapped in two reserved
//! characters while rendering. The rendered document is parsed as YAML and each marked value
//! must begin and end inside one and the same scalar; then the marks are removed, the document
//! is parsed again and must have the same shape (mappings, sequences, tags) and the same strings
//! as with the marks.
//! A value that closes a quote, starts a new line of YAML, adds a tag or an alias, or is cut by
//! a comment fails one of the two checks, whatever characters it uses. Values paved formats
//! itself (`tojson`, the `proton_cfn_*` filters, numbers) are quoted by construction and
//! are not marked.

use std::sync::{Arc, OnceLock};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Serde};
use minijinja::{Environment, Error as JinjaError, ErrorKind, State, UndefinedBehavior, Value};
use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

const STRING_START: char = '\u{E000}';
const STRING_END: char = '\u{E001}';
const BLOCK_START: char = '\u{E002}';
const BLOCK_END: char = '\u{E003}';

/// Work a single render may do (instructions and data), so that no template loops forever.
const FUEL: u64 = 20_000_000;

/// What a single render may print, in bytes: CloudFormation's own limit on a template (1 MB
/// through S3), so that no expression (`'x' * 100000000`) makes paved hold and check more.
pub const MAX_RENDERED_BYTES: usize = 1_000_000;

/// What can go wrong rendering one template file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template itself is wrong (syntax, an undefined variable, a filter's refusal).
    #[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        file: String,
        line: Option<usize>,
        reason: String,
    },
    /// An input value would change the rendered template's structure.
    #[error("{file}: {reason}")]
    Injection { file: String, reason: String },
    /// The rendered document is not valid YAML (or JSON).
    #[error("{file}: the rendered template is not valid YAML: {reason}")]
    NotYaml { file: String, reason: String },
}

/// Outputs a template may read: known values, or (for authors testing a template without a
/// deployment) an example value for any name.
#[derive(Debug, Clone)]
pub enum Outputs {
    Known(serde_json::Map<String, Json>),
    Examples,
}

impl Outputs {
    pub fn none() -> Self {
        Self::Known(serde_json::Map::new())
    }

    fn value(&self) -> Value {
        match self {
            Self::Known(map) => Value::from(Serde(map)),
            Self::Examples => Value::from_object(ExampleOutputs),
        }
    }
}

/// An example value for an output, shaped by its name so that linters accept it (an ARN for
/// `...Arn` and `...Role`, a VPC, subnet or security group id for those), distinct per name.
pub fn example_output(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    // FNV-1a: a stable, distinct suffix per name.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let id = format!("{hash:017x}");
    let arn = |service: &str, region: &str, resource: String| {
        format!("arn:aws:{service}:{region}:123456789012:{resource}")
    };
    if lower.ends_with("arn") || lower.ends_with("role") {
        if lower.contains("topic") || lower.contains("sns") {
            arn("sns", "us-east-1", format!("example-{name}"))
        } else if lower.contains("queue") || lower.contains("sqs") {
            arn("sqs", "us-east-1", format!("example-{name}"))
        } else if lower.contains("cluster") {
            arn("ecs", "us-east-1", format!("cluster/example-{name}"))
        } else if lower.contains("function") || lower.contains("lambda") {
            arn("lambda", "us-east-1", format!("function:example-{name}"))
        } else if lower.contains("policy") {
            arn("iam", "", format!("policy/example-{name}"))
        } else {
            arn("iam", "", format!("role/example-{name}"))
        }
    } else if lower.contains("vpcid") || lower == "vpc" {
        format!("vpc-{id}")
    } else if lower.contains("subnet") {
        format!("subnet-{id}")
    } else if lower.contains("securitygroup") {
        format!("sg-{id}")
    } else if lower.contains("url") || lower.contains("endpoint") {
        format!("https://example.com/{name}")
    } else {
        format!("example-{name}")
    }
}

/// The outputs a rendered template declares: a literal value where the template gives one,
/// an example value where CloudFormation would compute it.
pub fn declared_outputs(rendered: &str) -> serde_json::Map<String, Json> {
    let Ok(document) = yaml_serde::from_str::<Yaml>(rendered) else {
        return serde_json::Map::new();
    };
    let Some(Yaml::Mapping(outputs)) = document.get("Outputs") else {
        return serde_json::Map::new();
    };
    outputs
        .iter()
        .filter_map(|(name, output)| {
            let name = name.as_str()?;
            let value = match output.get("Value") {
                Some(Yaml::String(literal)) => literal.clone(),
                Some(Yaml::Number(n)) => n.to_string(),
                Some(Yaml::Bool(b)) => b.to_string(),
                _ => example_output(name),
            };
            Some((name.to_string(), Json::String(value)))
        })
        .collect()
}

#[derive(Debug)]
struct ExampleOutputs;

impl Object for ExampleOutputs {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().map(|name| Value::from(example_output(name)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }
}

/// A structured value a `proton_cfn_*` filter made; it prints as YAML fitted to its position.
#[derive(Debug)]
struct YamlBlock(Json);

impl Object for YamlBlock {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
}

/// Names for the resources of a service, as Proton's namespaces expose them.
#[derive(Debug, Clone, Default)]
pub struct ServiceNames {
    pub name: String,
    pub repository_id: Option<String>,
    pub repository_connection_arn: Option<String>,
    pub branch_name: Option<String>,
}

/// One instance as a pipeline template sees it.
#[derive(Debug, Clone)]
pub struct PipelineInstance {
    pub name: String,
    pub inputs: serde_json::Map<String, Json>,
    pub outputs: Outputs,
    pub environment_name: String,
    pub environment_account_id: String,
    pub environment_outputs: Outputs,
}

/// The namespace of an environment template.
pub fn environment_context(name: &str, inputs: &serde_json::Map<String, Json>) -> Value {
    minijinja::context! {
        environment => minijinja::context! { name => name, inputs => Value::from(Serde(inputs)) },
    }
}

/// The namespace of a service instance template.
pub fn instance_context(
    service: &ServiceNames,
    instance: &str,
    inputs: &serde_json::Map<String, Json>,
    environment: &str,
    environment_outputs: &Outputs,
    component: Option<(&str, &Outputs)>,
) -> Value {
    let environment = minijinja::context! {
        name => environment,
        outputs => environment_outputs.value(),
    };
    let default_component = match component {
        Some((name, outputs)) => minijinja::context! { name => name, outputs => outputs.value() },
        None => minijinja::context! { outputs => Outputs::none().value() },
    };
    minijinja::context! {
        service => service_value(service),
        service_instance => minijinja::context! {
            name => instance,
            inputs => Value::from(Serde(inputs)),
            environment => environment.clone(),
            components => minijinja::context! { default => default_component },
        },
        environment => environment,
    }
}

/// The namespace of a service pipeline template.
pub fn pipeline_context(
    service: &ServiceNames,
    inputs: &serde_json::Map<String, Json>,
    instances: &[PipelineInstance],
) -> Value {
    let instances: Vec<Value> = instances
        .iter()
        .map(|i| {
            minijinja::context! {
                name => i.name.as_str(),
                inputs => Value::from(Serde(&i.inputs)),
                outputs => i.outputs.value(),
                environment => minijinja::context! {
                    name => i.environment_name.as_str(),
                    account_id => i.environment_account_id.as_str(),
                    outputs => i.environment_outputs.value(),
                },
            }
        })
        .collect();
    minijinja::context! {
        service => service_value(service),
        pipeline => minijinja::context! { inputs => Value::from(Serde(inputs)) },
        service_instances => instances,
    }
}

/// The namespace of a component template.
pub fn component_context(
    component: &str,
    service: Option<(&ServiceNames, &str, &serde_json::Map<String, Json>)>,
    environment: &str,
    environment_outputs: &Outputs,
) -> Value {
    let environment =
        minijinja::context! { name => environment, outputs => environment_outputs.value() };
    match service {
        Some((service, instance, inputs)) => minijinja::context! {
            component => minijinja::context! { name => component },
            service => service_value(service),
            service_instance => minijinja::context! { name => instance, inputs => Value::from(Serde(inputs)) },
            environment => environment,
        },
        None => minijinja::context! {
            component => minijinja::context! { name => component },
            environment => environment,
        },
    }
}

fn service_value(service: &ServiceNames) -> Value {
    minijinja::context! {
        name => service.name.clone(),
        repository_id => service.repository_id.clone(),
        repository_connection_arn => service.repository_connection_arn.clone(),
        branch_name => service.branch_name.clone(),
    }
}

fn engine() -> &'static Environment<'static> {
    static ENGINE: OnceLock<Environment<'static>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_fuel(Some(FUEL));
        env.set_debug(true);
        env.set_formatter(format_value);
        env.add_filter("truncate", truncate);
        env.add_filter("proton_cfn_sanitize", sanitize_filter);
        env.add_filter("proton_cfn_iam_policy_arns", iam_policy_arns);
        env.add_filter(
            "proton_cfn_ecs_task_definition_formatted_env_vars",
            ecs_env_vars,
        );
        env.add_filter(
            "proton_cfn_lambda_function_formatted_env_vars",
            lambda_env_vars,
        );
        env
    })
}

/// Counts what a render prints through values, and stops it past `MAX_RENDERED_BYTES`.
fn count_printed(state: &mut State, bytes: usize) -> Result<(), JinjaError> {
    let printed = state
        .get_temp("paved.printed")
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0) as usize;
    let total = printed.saturating_add(bytes);
    if total > MAX_RENDERED_BYTES {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!(
                "the rendered template would be over {MAX_RENDERED_BYTES} bytes, CloudFormation's limit"
            ),
        ));
    }
    state.set_temp("paved.printed", Value::from(total as u64));
    Ok(())
}

/// Whatever a template prints (an input value or key, a name, a repository field, an output)
/// must not hold the characters that trace values through rendering: with them, a value could
/// close its own trace and reopen it later, and pass YAML syntax as its own.
fn refuse_marks(text: &str) -> Result<(), JinjaError> {
    if text
        .chars()
        .any(|c| matches!(c, STRING_START | STRING_END | BLOCK_START | BLOCK_END))
    {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            "a printed value holds a character from U+E000 to U+E003, which paved reserves",
        ));
    }
    Ok(())
}

fn format_value(
    out: &mut minijinja::Output,
    state: &mut State,
    value: &Value,
) -> Result<(), JinjaError> {
    if let Some(block) = value.downcast_object_ref::<YamlBlock>() {
        let json = serde_json::to_string(&block.0)
            .map_err(|e| JinjaError::new(ErrorKind::BadSerialization, e.to_string()))?;
        count_printed(state, json.len())?;
        refuse_marks(&json)?;
        return write!(out, "{BLOCK_START}{json}{BLOCK_END}").map_err(JinjaError::from);
    }
    if let Some(text) = value.as_str() {
        count_printed(state, text.len())?;
        refuse_marks(text)?;
    }
    match value.as_str() {
        Some(text) if !value.is_safe() => {
            write!(out, "{STRING_START}{text}{STRING_END}").map_err(JinjaError::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Jinja's `truncate(length=255, killwords=False, end='...', leeway=5)`.
fn truncate(
    value: String,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
    leeway: Option<usize>,
) -> String {
    let length = length.unwrap_or(255);
    let end = end.unwrap_or_else(|| "...".into());
    let leeway = leeway.unwrap_or(5);
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= length.saturating_add(leeway) {
        return value;
    }
    let keep = length.saturating_sub(end.chars().count());
    let head: String = chars[..keep].iter().collect();
    if killwords.unwrap_or(false) {
        return head + &end;
    }
    match head.rsplit_once(' ') {
        Some((words, _)) => format!("{words}{end}"),
        None => head + &end,
    }
}

fn is_sanitized(value: &str) -> bool {
    static ARN: OnceLock<regex::Regex> = OnceLock::new();
    let arn = ARN.get_or_init(|| {
        regex::Regex::new(r"^arn:[a-z0-9-]+:[a-zA-Z0-9-]+:[a-z0-9-]*:(\d{12}|aws)?:[^\s]+$")
            .expect("the ARN pattern compiles")
    });
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        || arn.is_match(value)
}

fn sanitize(value: &str) -> Result<(), JinjaError> {
    if is_sanitized(value) {
        Ok(())
    } else {
        Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!(
                "proton_cfn_sanitize: {value:?} is neither an ARN nor made of letters, digits, '_' and '-'"
            ),
        ))
    }
}

fn sanitize_filter(value: String) -> Result<String, JinjaError> {
    sanitize(&value)?;
    Ok(value)
}

/// The entries of a mapping of outputs, as strings; anything that is not a mapping has none.
fn entries(value: &Value) -> Result<Vec<(String, String)>, JinjaError> {
    if value.is_undefined()
        || value.is_none()
        || value
            .as_object()
            .is_some_and(|o| o.enumerator_len() == Some(0))
    {
        return Ok(vec![]);
    }
    let mut pairs = Vec::new();
    for key in value.try_iter()? {
        let item = value.get_item(&key)?;
        pairs.push((key.to_string(), item.to_string()));
    }
    Ok(pairs)
}

fn iam_policy_arns(value: Value) -> Result<Value, JinjaError> {
    static POLICY: OnceLock<regex::Regex> = OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        regex::Regex::new(r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}|aws):policy/[\w+=,.@/-]+$")
            .expect("the policy ARN pattern compiles")
    });
    let arns: Vec<Json> = entries(&value)?
        .into_iter()
        .filter(|(_, v)| policy.is_match(v))
        .map(|(_, v)| Json::String(v))
        .collect();
    Ok(Value::from_object(YamlBlock(Json::Array(arns))))
}

fn checked_entries(
    value: &Value,
    kwargs: &Kwargs,
    raw: Option<bool>,
) -> Result<Vec<(String, String)>, JinjaError> {
    let raw = match raw {
        Some(raw) => raw,
        None => kwargs.get::<Option<bool>>("raw")?.unwrap_or(true),
    };
    kwargs.assert_all_used()?;
    let pairs = entries(value)?;
    if !raw {
        for (_, v) in &pairs {
            sanitize(v)?;
        }
    }
    Ok(pairs)
}

fn ecs_env_vars(value: Value, raw: Option<bool>, kwargs: Kwargs) -> Result<Value, JinjaError> {
    let list = checked_entries(&value, &kwargs, raw)?
        .into_iter()
        .map(|(name, value)| serde_json::json!({ "Name": name, "Value": value }))
        .collect();
    Ok(Value::from_object(YamlBlock(Json::Array(list))))
}

fn lambda_env_vars(value: Value, raw: Option<bool>, kwargs: Kwargs) -> Result<Value, JinjaError> {
    let map = checked_entries(&value, &kwargs, raw)?
        .into_iter()
        .map(|(name, value)| (name, Json::String(value)))
        .collect();
    Ok(Value::from_object(YamlBlock(Json::Object(map))))
}

/// Renders one template file with a namespace, checking that inputs kept to their values.
pub fn render(file: &str, source: &str, context: Value) -> Result<String, RenderError> {
    let marked = engine()
        .render_named_str(file, source, context)
        .map_err(|error| template_error(file, source, &error))?;
    // The template's own text counts too (a loop repeating it).
    if marked.len() > MAX_RENDERED_BYTES + MAX_RENDERED_BYTES / 2 {
        return Err(RenderError::Template {
            file: file.to_string(),
            line: None,
            reason: format!(
                "the rendered template is over {MAX_RENDERED_BYTES} bytes, CloudFormation's limit"
            ),
        });
    }
    let marked = expand_blocks(&marked);
    check_structure(file, &marked)?;
    Ok(strip_marks(&marked))
}

fn template_error(file: &str, source: &str, error: &JinjaError) -> RenderError {
    let mut reason = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(expression) = error.range().and_then(|range| source.get(range))
        && error.kind() == ErrorKind::UndefinedError
    {
        reason.push_str(&format!(" (`{}`)", expression.trim()));
    }
    // An error raised inside a filter chain carries its cause as the source.
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        reason.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    RenderError::Template {
        file: file.to_string(),
        line: error.line(),
        reason,
    }
}

/// Replaces each structured value with YAML: a block at the start of a line (indented to that
/// column), JSON flow style after other text.
fn expand_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(BLOCK_START) {
        let Some(length) = rest[start..].find(BLOCK_END) else {
            break;
        };
        out.push_str(&rest[..start]);
        let json_text = &rest[start + BLOCK_START.len_utf8()..start + length];
        let line_start = out.rfind('\n').map_or(0, |i| i + 1);
        let prefix = &out[line_start..];
        let value: Json = serde_json::from_str(json_text).unwrap_or(Json::Null);
        if prefix.chars().all(|c| c == ' ') {
            let indent = prefix.chars().count();
            out.push_str(&block_yaml(&value, indent));
        } else {
            out.push_str(json_text);
        }
        rest = &rest[start + length + BLOCK_END.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// Block-style YAML for a list or mapping; every scalar is written as a JSON string (which is
/// also a YAML double-quoted scalar), so no value can be read as YAML syntax.
fn block_yaml(value: &Json, indent: usize) -> String {
    let newline = format!("\n{}", " ".repeat(indent));
    match value {
        Json::Array(items) => items
            .iter()
            .map(|item| format!("- {}", block_yaml(item, indent + 2)))
            .collect::<Vec<_>>()
            .join(&newline),
        Json::Object(map) => map
            .iter()
            .map(|(key, value)| {
                let plain = key.starts_with(|c: char| c.is_ascii_alphabetic())
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                let key = if plain {
                    key.clone()
                } else {
                    Json::String(key.clone()).to_string()
                };
                match value {
                    Json::Array(_) | Json::Object(_) => {
                        format!(
                            "{key}:\n{}{}",
                            " ".repeat(indent + 2),
                            block_yaml(value, indent + 2)
                        )
                    }
                    scalar => format!("{key}: {}", scalar_json(scalar)),
                }
            })
            .collect::<Vec<_>>()
            .join(&newline),
        scalar => scalar_json(scalar),
    }
}

fn scalar_json(value: &Json) -> String {
    match value {
        Json::String(_) => value.to_string(),
        other => Json::String(other.to_string()).to_string(),
    }
}

fn strip_marks(text: &str) -> String {
    text.chars()
        .filter(|c| *c != STRING_START && *c != STRING_END)
        .collect()
}

fn check_structure(file: &str, marked: &str) -> Result<(), RenderError> {
    let plain = strip_marks(marked);
    let unmarked: Yaml = yaml_serde::from_str(&plain).map_err(|e| RenderError::NotYaml {
        file: file.into(),
        reason: e.to_string(),
    })?;
    let injection = |detail: String| RenderError::Injection {
        file: file.into(),
        reason: format!("an input value would change the template's structure: {detail}"),
    };
    let with_marks: Yaml = yaml_serde::from_str(marked).map_err(|e| {
        injection(format!(
            "with each value kept whole the document does not parse ({e})"
        ))
    })?;
    balanced(&with_marks).map_err(injection)?;
    if !same_shape(&with_marks, &unmarked) {
        return Err(injection(
            "a value turns into YAML syntax (a tag, an anchor, an alias, a collection, a quote) once rendered".into(),
        ));
    }
    Ok(())
}

/// Every marked value begins and ends in the same scalar, and no tag holds one.
fn balanced(value: &Yaml) -> Result<(), String> {
    match value {
        Yaml::String(text) => balanced_text(text),
        Yaml::Sequence(items) => items.iter().try_for_each(balanced),
        Yaml::Mapping(map) => map
            .iter()
            .try_for_each(|(k, v)| balanced(k).and_then(|()| balanced(v))),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            if tag.contains([STRING_START, STRING_END]) {
                return Err(format!("a value becomes the tag {}", strip_marks(&tag)));
            }
            balanced(&tagged.value)
        }
        _ => Ok(()),
    }
}

fn balanced_text(text: &str) -> Result<(), String> {
    let mut open: Option<usize> = None;
    for (index, c) in text.char_indices() {
        match (c, open) {
            (STRING_START, None) => open = Some(index),
            (STRING_END, Some(start)) => {
                cloudformation_syntax(&text[start + STRING_START.len_utf8()..index])?;
                open = None;
            }
            (STRING_START | STRING_END, _) => return Err(near(text, index)),
            _ => {}
        }
    }
    match open {
        Some(index) => Err(near(text, index)),
        None => Ok(()),
    }
}

/// An input value is text: it must not turn into CloudFormation syntax where it is printed. A
/// dynamic reference would let the value read any parameter or secret the deployment role can,
/// and `${...}` is a substitution inside `!Sub` (and a literal elsewhere, where nothing needs it).
fn cloudformation_syntax(value: &str) -> Result<(), String> {
    if value.contains("{{resolve:") {
        return Err(format!(
            "a value holds a CloudFormation dynamic reference ({{{{resolve:...}}}}), which would read what the deployment role can read: {:?}",
            value.chars().take(60).collect::<String>()
        ));
    }
    if value.contains("${") {
        return Err(format!(
            "a value holds ${{...}}, which CloudFormation substitutes inside !Sub: {:?}",
            value.chars().take(60).collect::<String>()
        ));
    }
    Ok(())
}

fn near(text: &str, index: usize) -> String {
    let fragment: String = strip_marks(&text[index..]).chars().take(60).collect();
    let fragment = if fragment.is_empty() {
        strip_marks(text).chars().take(60).collect()
    } else {
        fragment
    };
    format!("it spills out of its YAML value near {fragment:?}")
}

fn same_shape(a: &Yaml, b: &Yaml) -> bool {
    match (a, b) {
        (Yaml::Sequence(x), Yaml::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_shape(p, q))
        }
        (Yaml::Mapping(x), Yaml::Mapping(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| same_shape(ka, kb) && same_shape(va, vb))
        }
        (Yaml::Tagged(x), Yaml::Tagged(y)) => x.tag == y.tag && same_shape(&x.value, &y.value),
        // A string must read the same without the marks: an anchor, a quote or an escape in
        // a value would otherwise change it silently.
        (Yaml::String(x), Yaml::String(y)) => strip_marks(x) == *y,
        (Yaml::Sequence(_) | Yaml::Mapping(_) | Yaml::Tagged(_), _)
        | (_, Yaml::Sequence(_) | Yaml::Mapping(_) | Yaml::Tagged(_)) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests;
