//! Pipelines that still reach Proton after Proton: the sample pipelines call `aws proton ...`
//! from CodeBuild. The AWS CLI sends those calls to `AWS_ENDPOINT_URL_PROTON` when it is set,
//! so paved sets it on every CodeBuild project of a rendered pipeline template. In AWS paved's
//! API verifies `execute-api` signatures only, so paved also puts one line first in the install
//! phase of each inline buildspec ([`setup_command`]): it writes the Proton model of the image's
//! own botocore, signing for `execute-api`, where every botocore of the build reads it. The
//! templates' own commands stay as their authors wrote them.
//!
//! A changed template is written back as JSON, with short-form intrinsics (`!Ref`, `!GetAtt`,
//! `!Sub`, ...) in their long form: YAML re-emitted from a parse loses the quotes that keep a
//! value such as `"2012-10-17"` a string for YAML 1.1 readers, and JSON has no such ambiguity.

use serde_json::{Map, Value as Json};
use yaml_serde::Value as Yaml;

/// The variable the AWS CLI and SDKs read for the Proton endpoint.
pub const ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_PROTON";

/// The script the setup command runs (`proton_model.py`, without its comments).
const MODEL_SCRIPT: &str = include_str!("proton_model.py");

/// The command paved puts first in the install phase of a pipeline's inline buildspecs: it
/// runs [`MODEL_SCRIPT`] with the image's `python3`, and never fails the build.
pub fn setup_command() -> String {
    use base64::Engine;
    let script: String = MODEL_SCRIPT
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(script);
    format!(
        "echo {encoded} | base64 -d | python3 - || echo 'paved: the Proton model for execute-api was not set up'"
    )
}

/// Readies a rendered pipeline template for paved: `AWS_ENDPOINT_URL_PROTON = endpoint` in the
/// environment variables of each `AWS::CodeBuild::Project`, and [`setup_command`] first in the
/// install phase of its buildspec when the buildspec is in the template (a string, a `Fn::Sub`
/// of one, or a `Fn::Join` of strings and intrinsics, in JSON or YAML). A template without
/// CodeBuild projects comes back unchanged, byte for byte; a project that already sets the
/// variable keeps its value; a buildspec paved cannot read (a file in the repository, another
/// intrinsic) is left alone.
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
        if let Some(buildspec) = resource
            .get_mut("Properties")
            .and_then(|p| p.get_mut("Source"))
            .and_then(|s| s.get_mut("BuildSpec"))
        {
            changed |= with_setup_command(buildspec);
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

/// Puts [`setup_command`] first in a buildspec's install phase; whether it changed anything.
fn with_setup_command(buildspec: &mut Yaml) -> bool {
    match buildspec {
        Yaml::String(text) => match install_setup(text) {
            Some(next) => {
                *text = next;
                true
            }
            None => false,
        },
        Yaml::Tagged(tagged) if tagged.tag == "!Sub" => with_setup_command(&mut tagged.value),
        Yaml::Tagged(tagged) if tagged.tag == "!Join" => join_setup(&mut tagged.value),
        Yaml::Mapping(map) if map.len() == 1 => {
            if let Some(inner) = map.get_mut("Fn::Sub") {
                return matches!(inner, Yaml::String(_)) && with_setup_command(inner);
            }
            match map.get_mut("Fn::Join") {
                Some(join) => join_setup(join),
                None => false,
            }
        }
        _ => false,
    }
}

/// A `Fn::Join` with the empty separator: its intrinsic parts stand in the text as marks while
/// the buildspec is read and written, then become parts again.
fn join_setup(join: &mut Yaml) -> bool {
    let Some([separator, Yaml::Sequence(parts)]) = join.as_sequence_mut().map(Vec::as_mut_slice)
    else {
        return false;
    };
    if separator.as_str() != Some("") {
        return false;
    }
    let mark = |i: usize| format!("@@paved-part-{i}@@");
    let mut text = String::new();
    // (A tagged intrinsic is not a string here, whatever its value: `!Ref Repo` is a part.)
    let literal = |part: &Yaml| match part {
        Yaml::String(s) => Some(s.clone()),
        _ => None,
    };
    for (i, part) in parts.iter().enumerate() {
        match literal(part) {
            Some(s) if !s.contains("@@paved-part-") => text.push_str(&s),
            Some(_) => return false,
            None => text.push_str(&mark(i)),
        }
    }
    let Some(next) = install_setup(&text) else {
        return false;
    };
    let mut rebuilt = Vec::new();
    let mut rest = next.as_str();
    for (i, part) in parts.iter().enumerate() {
        if literal(part).is_some() {
            continue;
        }
        let Some((before, after)) = rest.split_once(&mark(i)) else {
            return false;
        };
        if !before.is_empty() {
            rebuilt.push(Yaml::from(before));
        }
        rebuilt.push(part.clone());
        rest = after;
    }
    if rest.contains("@@paved-part-") {
        return false;
    }
    if !rest.is_empty() {
        rebuilt.push(Yaml::from(rest));
    }
    *parts = rebuilt;
    true
}

/// The buildspec text with [`setup_command`] first in `phases.install.commands`; `None` if it
/// has no `phases` or has the command. CodeBuild reads buildspecs as YAML (so the JSON ones may
/// have trailing commas, as some samples do); paved writes the result as JSON, which CodeBuild
/// reads the same and where every string stays quoted.
fn install_setup(text: &str) -> Option<String> {
    let command = setup_command();
    let mut spec: Json = match serde_json::from_str(text) {
        Ok(spec) => spec,
        Err(_) => to_json(yaml_serde::from_str::<Yaml>(text).ok()?).ok()?,
    };
    let install = spec
        .get_mut("phases")?
        .as_object_mut()?
        .entry("install")
        .or_insert_with(|| Json::Object(Map::new()))
        .as_object_mut()?;
    let commands = install
        .entry("commands")
        .or_insert_with(|| Json::Array(vec![]))
        .as_array_mut()?;
    if commands
        .iter()
        .any(|c| c.as_str() == Some(command.as_str()))
    {
        return None;
    }
    commands.insert(0, Json::String(command));
    serde_json::to_string_pretty(&spec).ok()
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

    fn install_commands(buildspec: &str) -> Vec<String> {
        let spec: Json = serde_json::from_str(buildspec).unwrap();
        spec["phases"]["install"]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }

    fn project(buildspec: &str) -> String {
        format!(
            "Resources:\n  Build:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      Environment: {{}}\n      Source:\n        Type: CODEPIPELINE\n        BuildSpec: {buildspec}\n"
        )
    }

    #[test]
    fn the_setup_command_goes_first_in_every_inline_buildspec_and_the_rest_is_kept() {
        let command = setup_command();
        // A JSON buildspec with an install phase, as most samples write it (a trailing comma
        // too: CodeBuild reads it as YAML).
        let json = r#"'{"version": "0.2", "phases": {"install": {"commands": ["pip3 install awscli",]}, "build": {"commands": ["aws proton get-service"]}}}'"#;
        let out: Json =
            serde_json::from_str(&with_proton_endpoint(&project(json), "https://x").unwrap())
                .unwrap();
        let spec = out["Resources"]["Build"]["Properties"]["Source"]["BuildSpec"]
            .as_str()
            .unwrap();
        assert_eq!(
            install_commands(spec),
            vec![command.clone(), "pip3 install awscli".to_string()]
        );
        assert!(spec.contains("aws proton get-service"));
        // A YAML buildspec without an install phase gets one; a Sub keeps its references.
        let yaml = "!Sub |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - echo ${AWS::Region}\n";
        let out: Json =
            serde_json::from_str(&with_proton_endpoint(&project(yaml), "https://x").unwrap())
                .unwrap();
        let spec = out["Resources"]["Build"]["Properties"]["Source"]["BuildSpec"]["Fn::Sub"]
            .as_str()
            .unwrap();
        assert_eq!(install_commands(spec), vec![command.clone()]);
        assert!(spec.contains("echo ${AWS::Region}"), "{spec}");
        // A buildspec file in the repository is left alone.
        let file = with_proton_endpoint(&project("buildspec.yml"), "https://x").unwrap();
        let out: Json = serde_json::from_str(&file).unwrap();
        assert_eq!(
            out["Resources"]["Build"]["Properties"]["Source"]["BuildSpec"],
            "buildspec.yml"
        );
    }

    #[test]
    fn a_joined_buildspec_keeps_its_intrinsic_parts_in_place() {
        let join = "\n          Fn::Join:\n            - ''\n            - - '{\"version\": \"0.2\", \"phases\": {\"install\": {\"runtime-versions\": {\"docker\": 18}}, \"build\": {\"commands\": [\"echo '\n              - !Ref Repo\n              - '\"]}}}'\n";
        let out: Json =
            serde_json::from_str(&with_proton_endpoint(&project(join), "https://x").unwrap())
                .unwrap();
        let parts = out["Resources"]["Build"]["Properties"]["Source"]["BuildSpec"]["Fn::Join"][1]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[1], serde_json::json!({"Ref": "Repo"}));
        let joined = format!(
            "{}REPO{}",
            parts[0].as_str().unwrap(),
            parts[2].as_str().unwrap()
        );
        assert_eq!(install_commands(&joined), vec![setup_command()]);
        let spec: Json = serde_json::from_str(&joined).unwrap();
        assert_eq!(spec["phases"]["build"]["commands"][0], "echo REPO");
        assert_eq!(spec["phases"]["install"]["runtime-versions"]["docker"], 18);
        // Done twice, the command is there once.
        let again =
            with_proton_endpoint(&serde_json::to_string(&out).unwrap(), "https://x").unwrap();
        assert_eq!(again.matches("base64 -d").count(), 1);
    }

    #[test]
    fn the_setup_command_is_the_script_and_fails_nothing() {
        use base64::Engine;
        let command = setup_command();
        let encoded = command
            .strip_prefix("echo ")
            .and_then(|c| c.split_once(' '))
            .unwrap()
            .0;
        let script = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let script = String::from_utf8(script).unwrap();
        assert!(
            script.contains("signingName") && !script.contains("# "),
            "{script}"
        );
        assert!(
            command.ends_with("|| echo 'paved: the Proton model for execute-api was not set up'")
        );
        assert!(
            !command.contains('$') && !command.contains('"'),
            "{command}"
        );
    }
}
