//! Components: directly defined infrastructure (a manifest and one CloudFormation file), either
//! attached to a service instance or standing alone in an environment.

use crate::domain::names::Tags;
use serde::{Deserialize, Serialize};

use super::environment::{ComponentDefinition, Deployed};
use super::error::Error;
use super::names::{Description, ResourceName, Timestamp};
use super::spec::{Inputs, Spec};

/// The model's limits on a component's manifest and template file (characters).
pub const MAX_MANIFEST_CHARS: usize = 1024;
pub const MAX_TEMPLATE_FILE_CHARS: usize = 51_200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: ResourceName,
    pub description: Option<Description>,
    pub environment: ResourceName,
    pub created_at: Timestamp,
    pub last_modified_at: Timestamp,
    pub last_client_request_token: Option<String>,
    #[serde(flatten)]
    pub deployed: Deployed,
    /// The customer's own tags (TagResource, or `tags` on create).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    pub rev: u64,
}

impl Component {
    /// What the component deploys (or is deploying): its definition and attachment.
    pub fn definition(&self) -> Option<&ComponentDefinition> {
        self.deployed.state.component.as_ref()
    }

    /// The service instance it is attached to, if any.
    pub fn attachment(&self) -> Option<(&ResourceName, &ResourceName)> {
        let definition = self.definition()?;
        Some((definition.service.as_ref()?, definition.instance.as_ref()?))
    }
}

/// Checks what a caller gives for a component: the manifest lists exactly one Jinja
/// CloudFormation file, sizes are within the model's limits, the service and instance come
/// together, and a service spec only with them.
pub fn check_definition(
    definition: &ComponentDefinition,
    service_spec: Option<&str>,
) -> Result<(), Error> {
    let chars = definition.manifest.chars().count();
    if chars == 0 || chars > MAX_MANIFEST_CHARS {
        return Err(Error::validation(format!(
            "manifest: {chars} characters; it must have 1 to {MAX_MANIFEST_CHARS}"
        )));
    }
    let files = super::bundle::manifest_files(&definition.manifest, "manifest")
        .map_err(Error::Validation)?;
    if files.len() != 1 {
        return Err(Error::validation(format!(
            "manifest: lists {} template files; a component has exactly one (its templateFile)",
            files.len()
        )));
    }
    let chars = definition.template_file.chars().count();
    if chars == 0 || chars > MAX_TEMPLATE_FILE_CHARS {
        return Err(Error::validation(format!(
            "templateFile: {chars} characters; it must have 1 to {MAX_TEMPLATE_FILE_CHARS}"
        )));
    }
    match (&definition.service, &definition.instance) {
        (Some(_), Some(_)) => Ok(()),
        (None, None) if service_spec.is_some() => Err(Error::validation(
            "serviceSpec: only a component attached to a service instance takes a service spec",
        )),
        (None, None) => Ok(()),
        _ => Err(Error::validation(
            "serviceName and serviceInstanceName: give both to attach the component to a service instance, or neither",
        )),
    }
}

/// The inputs a component's template sees as `service_instance.inputs`: the entry for its
/// instance in the service spec it was given, or else the instance's own inputs.
pub fn service_inputs(
    service_spec: Option<&str>,
    instance: &ResourceName,
    instance_inputs: &Inputs,
) -> Result<Inputs, Error> {
    let Some(text) = service_spec else {
        return Ok(instance_inputs.clone());
    };
    let Spec::Service { instances, .. } = Spec::parse(text).map_err(Error::Validation)? else {
        return Err(Error::validation(
            "serviceSpec: a component takes `proton: ServiceSpec`",
        ));
    };
    instances
        .into_iter()
        .find(|i| &i.name == instance)
        .map(|i| i.inputs)
        .ok_or_else(|| {
            Error::validation(format!(
                "serviceSpec: no entry in instances names {instance}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n";

    fn name(text: &str) -> ResourceName {
        ResourceName::parse(text).unwrap()
    }

    fn definition(service: Option<&str>, instance: Option<&str>) -> ComponentDefinition {
        ComponentDefinition {
            manifest: MANIFEST.into(),
            template_file: "Resources: {}\n".into(),
            service: service.map(name),
            instance: instance.map(name),
        }
    }

    #[test]
    fn a_definition_names_one_file_and_both_or_neither_of_service_and_instance() {
        check_definition(
            &definition(Some("web"), Some("web-dev")),
            Some("proton: ServiceSpec\n"),
        )
        .unwrap();
        check_definition(&definition(None, None), None).unwrap();
        let half = check_definition(&definition(Some("web"), None), None).unwrap_err();
        assert!(half.to_string().contains("give both"), "{half}");
        let spec_alone =
            check_definition(&definition(None, None), Some("proton: ServiceSpec\n")).unwrap_err();
        assert!(
            spec_alone.to_string().starts_with("serviceSpec:"),
            "{spec_alone}"
        );
        let mut two = definition(None, None);
        two.manifest = format!(
            "{MANIFEST}    - file: other.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n"
        );
        assert!(
            check_definition(&two, None)
                .unwrap_err()
                .to_string()
                .contains("lists 2 template files")
        );
        let mut terraform = definition(None, None);
        terraform.manifest = MANIFEST.replace("jinja", "hcl");
        assert!(
            check_definition(&terraform, None)
                .unwrap_err()
                .to_string()
                .contains("rendering_engine \"hcl\" is not supported")
        );
        let mut empty = definition(None, None);
        empty.template_file = String::new();
        assert!(
            check_definition(&empty, None)
                .unwrap_err()
                .to_string()
                .starts_with("templateFile: 0 characters")
        );
    }

    #[test]
    fn service_inputs_come_from_the_given_spec_or_the_instance() {
        let own: Inputs = serde_json::from_str(r#"{"port": 80}"#).unwrap();
        assert_eq!(service_inputs(None, &name("a"), &own).unwrap(), own);
        let spec = "proton: ServiceSpec\ninstances:\n  - name: a\n    environment: dev\n    spec:\n      port: 8080\n";
        let given = service_inputs(Some(spec), &name("a"), &own).unwrap();
        assert_eq!(given["port"], 8080);
        let missing = service_inputs(Some(spec), &name("b"), &own).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("no entry in instances names b"),
            "{missing}"
        );
    }
}
