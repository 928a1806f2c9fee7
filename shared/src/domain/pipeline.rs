//! Pipelines that still reach Proton after Proton: the sample pipelines call `aws proton ...`
//! from CodeBuild. The AWS CLI sends those calls to `AWS_ENDPOINT_URL_PROTON` when it is set,
//! so paved sets it on every CodeBuild project of a rendered pipeline template: the templates
//! stay as their authors wrote them.
//!
//! A changed template is written back as JSON, with short-form intrinsics (`!Ref`, `!GetAtt`,
//! `!Sub`, ...) in their long form: YAML re-emitted from a parse loses the quotes that keep a
//! value such as `"2012-10-17"` a string for YAML 1.1 readers, and JSON has no such ambiguity.

use serde_json::{Map, Value as Json};
use yaml_serde::Value as Yaml;

/// The variable the AWS CLI and SDKs read for the Proton endpoint.
pub const ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_PROTON";

/// Adds `AWS_ENDPOINT_URL_PROTON = endpoint` to the environment variables of each
/// `AWS::CodeBuild::Project` in a rendered CloudFormation template. A template without
/// CodeBuild projects comes back unchanged, byte for byte; one whose project already sets the
/// variable keeps its value.
pub fn with_proton_endpoint(template: &str, endpoint: &str) -> Result<String, String> {
    let mut document: Yaml = yaml_serde::from_str(template)
        .map_err(|e| format!("the rendered pipeline template is not YAML: {e}"))?;
    let Some(resources) = document.get_mut("Resources").and_then(Yaml::as_mapping_mut) else {
        return Ok(template.to_string());
    };
    let mut changed = false;
    for (_, resource) in resources.iter_mut() {
        if resource.get("Type").and_then(Yaml::as_str) != Some("AWS::CodeBuild::Project") {
            continue;
        }
        let Some(environment) = resource
            .get_mut("Properties")
            .and_then(|p| p.get_mut("Environment"))
            .and_then(Yaml::as_mapping_mut)
        else {
            continue;
        };
        let variables = environment
            .entry(Yaml::from("EnvironmentVariables"))
            .or_insert_with(|| Yaml::Sequence(vec![]));
        let Some(list) = variables.as_sequence_mut() else {
            // An intrinsic function builds the list: paved cannot add to it safely.
            continue;
        };
        let present = list
            .iter()
            .any(|v| v.get("Name").and_then(Yaml::as_str) == Some(ENDPOINT_VARIABLE));
        if !present {
            let mut variable = yaml_serde::Mapping::new();
            variable.insert("Name".into(), ENDPOINT_VARIABLE.into());
            variable.insert("Type".into(), "PLAINTEXT".into());
            variable.insert("Value".into(), endpoint.into());
            list.push(Yaml::Mapping(variable));
            changed = true;
        }
    }
    if !changed {
        return Ok(template.to_string());
    }
    let json = to_json(document)?;
    serde_json::to_string_pretty(&json).map_err(|e| format!("the pipeline template: {e}"))
}

/// A parsed CloudFormation YAML template as its JSON form.
fn to_json(value: Yaml) -> Result<Json, String> {
    Ok(match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(b),
        Yaml::Number(n) => serde_json::to_value(&n).map_err(|e| e.to_string())?,
        Yaml::String(s) => Json::String(s),
        Yaml::Sequence(items) => {
            Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("a mapping key is not a scalar: {other:?}")),
                };
                map.insert(key, to_json(value)?);
            }
            Json::Object(map)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(tagged.value)?;
            let (key, value) = match (name, inner) {
                ("Ref" | "Condition", inner) => (name.to_string(), inner),
                // `!GetAtt Resource.Attribute` splits at the first dot.
                ("GetAtt", Json::String(text)) => {
                    let parts: Vec<Json> = match text.split_once('.') {
                        Some((resource, attribute)) => {
                            vec![resource.into(), attribute.into()]
                        }
                        None => vec![text.into()],
                    };
                    ("Fn::GetAtt".to_string(), Json::Array(parts))
                }
                (other, inner) => (format!("Fn::{other}"), inner),
            };
            Json::Object(Map::from_iter([(key, value)]))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  Build:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      ServiceRole: !GetAtt Role.Arn\n      Environment:\n        Type: LINUX_CONTAINER\n        EnvironmentVariables:\n          - Name: repo_name\n            Value: !Ref Repo\n  Deploy:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      Environment:\n        Type: LINUX_CONTAINER\n  Bucket:\n    Type: AWS::S3::Bucket\nOutputs:\n  Name:\n    Value: !Sub '${AWS::StackName}-x'\n";

    #[test]
    fn every_codebuild_project_gets_the_endpoint_and_the_rest_is_kept() {
        let out = with_proton_endpoint(PIPELINE, "https://paved.example/prod").unwrap();
        let doc: Json = serde_json::from_str(&out).unwrap();
        for project in ["Build", "Deploy"] {
            let variables =
                doc["Resources"][project]["Properties"]["Environment"]["EnvironmentVariables"]
                    .as_array()
                    .unwrap();
            let endpoint = variables
                .iter()
                .find(|v| v["Name"].as_str() == Some(ENDPOINT_VARIABLE))
                .unwrap_or_else(|| panic!("{project} has no endpoint variable:\n{out}"));
            assert_eq!(
                endpoint["Value"].as_str(),
                Some("https://paved.example/prod")
            );
        }
        // Short-form intrinsics come out in their long form.
        let build = &doc["Resources"]["Build"]["Properties"];
        assert_eq!(
            build["ServiceRole"],
            serde_json::json!({"Fn::GetAtt": ["Role", "Arn"]})
        );
        assert_eq!(
            build["Environment"]["EnvironmentVariables"][0]["Value"],
            serde_json::json!({"Ref": "Repo"})
        );
        assert_eq!(
            doc["Outputs"]["Name"]["Value"],
            serde_json::json!({"Fn::Sub": "${AWS::StackName}-x"})
        );
        assert_eq!(doc["Resources"]["Bucket"]["Type"], "AWS::S3::Bucket");
    }

    #[test]
    fn quoted_values_stay_strings_and_lists_under_tags_are_kept() {
        let template = "Resources:\n  P:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      Environment: {}\n      Tags: !If [IsProd, [{Key: a, Value: 'yes'}], !Ref AWS::NoValue]\n  Policy:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      PolicyDocument:\n        Version: '2012-10-17'\n";
        let out = with_proton_endpoint(template, "https://x").unwrap();
        let doc: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(
            doc["Resources"]["Policy"]["Properties"]["PolicyDocument"]["Version"],
            "2012-10-17"
        );
        let tags = &doc["Resources"]["P"]["Properties"]["Tags"]["Fn::If"];
        assert_eq!(tags[1][0]["Value"], "yes");
        assert_eq!(tags[2], serde_json::json!({"Ref": "AWS::NoValue"}));
    }

    #[test]
    fn templates_without_projects_or_with_the_variable_set_are_unchanged() {
        let plain = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n";
        assert_eq!(with_proton_endpoint(plain, "https://x").unwrap(), plain);
        let set = "Resources:\n  B:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      Environment:\n        EnvironmentVariables:\n          - Name: AWS_ENDPOINT_URL_PROTON\n            Value: https://mine\n";
        assert_eq!(with_proton_endpoint(set, "https://x").unwrap(), set);
    }
}
