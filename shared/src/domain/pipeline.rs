//! Pipelines that still reach Proton after Proton: the sample pipelines call `aws proton ...`
//! from CodeBuild. The AWS CLI sends those calls to `AWS_ENDPOINT_URL_PROTON` when it is set,
//! so paved sets it on every CodeBuild project of a rendered pipeline template: the templates
//! stay as their authors wrote them.

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
    yaml_serde::to_string(&document).map_err(|e| format!("the pipeline template: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = "Resources:\n  Build:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      ServiceRole: !GetAtt Role.Arn\n      Environment:\n        Type: LINUX_CONTAINER\n        EnvironmentVariables:\n          - Name: repo_name\n            Value: !Ref Repo\n  Deploy:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      Environment:\n        Type: LINUX_CONTAINER\n  Bucket:\n    Type: AWS::S3::Bucket\nOutputs:\n  Name:\n    Value: !Sub '${AWS::StackName}-x'\n";

    #[test]
    fn every_codebuild_project_gets_the_endpoint_and_the_rest_is_kept() {
        let out = with_proton_endpoint(PIPELINE, "https://paved.example/prod").unwrap();
        let doc: Yaml = yaml_serde::from_str(&out).unwrap();
        for project in ["Build", "Deploy"] {
            let variables =
                doc["Resources"][project]["Properties"]["Environment"]["EnvironmentVariables"]
                    .as_sequence()
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
        // Short-form intrinsics survive the round trip.
        assert!(out.contains("!GetAtt Role.Arn"), "{out}");
        assert!(out.contains("!Ref Repo"), "{out}");
        assert!(out.contains("!Sub"), "{out}");
        assert_eq!(
            doc["Resources"]["Bucket"]["Type"].as_str(),
            Some("AWS::S3::Bucket")
        );
    }

    #[test]
    fn templates_without_projects_or_with_the_variable_set_are_unchanged() {
        let plain = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n";
        assert_eq!(with_proton_endpoint(plain, "https://x").unwrap(), plain);
        let set = "Resources:\n  B:\n    Type: AWS::CodeBuild::Project\n    Properties:\n      Environment:\n        EnvironmentVariables:\n          - Name: AWS_ENDPOINT_URL_PROTON\n            Value: https://mine\n";
        assert_eq!(with_proton_endpoint(set, "https://x").unwrap(), set);
    }
}
