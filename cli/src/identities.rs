//! The local identities of `paved dev`: a platform engineer, a developer and a read-only user,
//! each an IAM user ARN of the local account with an access key pair, kept in the state folder
//! as an aws shared-credentials file (profiles `paved-platform`, `paved-developer`,
//! `paved-readonly`) and a config file that points those profiles at the local endpoints.
//! Keys made once are kept, so profiles stay valid across restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use paved_core::api::authn::LocalIdentity;
use paved_core::domain::access::Principal;

/// (aws profile, IAM user name) of each persona.
pub const PERSONAS: &[(&str, &str)] = &[
    ("paved-platform", "paved-platform"),
    ("paved-developer", "paved-developer"),
    ("paved-readonly", "paved-readonly"),
];

pub struct Identities {
    /// Profile → (access key id, secret, principal ARN).
    pub profiles: Vec<(String, String, String, String)>,
    pub credentials_file: PathBuf,
    pub config_file: PathBuf,
}

impl Identities {
    pub fn arn(&self, profile: &str) -> String {
        self.profiles
            .iter()
            .find(|p| p.0 == profile)
            .map(|p| p.3.clone())
            .unwrap_or_default()
    }

    pub fn keys(&self) -> HashMap<String, LocalIdentity> {
        self.profiles
            .iter()
            .map(|(_, key, secret, arn)| {
                (
                    key.clone(),
                    LocalIdentity {
                        principal: Principal::new(arn.clone()),
                        secret_access_key: secret.clone(),
                    },
                )
            })
            .collect()
    }
}

fn random(length: usize, alphabet: &[u8]) -> String {
    let mut out = String::new();
    while out.len() < length {
        for byte in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < length {
                out.push(alphabet[*byte as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// Reads `[profile]` sections with `aws_access_key_id` and `aws_secret_access_key`.
fn read_credentials(text: &str) -> HashMap<String, (String, String)> {
    let mut found = HashMap::new();
    let mut section = String::new();
    let mut key = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            key = None;
        } else if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => key = Some(v.trim().to_string()),
                "aws_secret_access_key" => {
                    if let Some(id) = key.clone() {
                        found.insert(section.clone(), (id, v.trim().to_string()));
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Loads the identities from `state_dir`, making the missing ones, and (re)writes the
/// credentials and config files.
pub fn ensure(
    state_dir: &Path,
    account: &str,
    region: &str,
    api: &str,
    aws: &str,
) -> std::io::Result<Identities> {
    let credentials_file = state_dir.join("credentials");
    let config_file = state_dir.join("config");
    let existing = std::fs::read_to_string(&credentials_file)
        .map(|t| read_credentials(&t))
        .unwrap_or_default();
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let secret_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut profiles = vec![];
    let mut credentials = String::from(
        "# Made by `paved dev`: the local identities (see the README, \"Who may do what\").\n",
    );
    let mut config = String::from("# Made by `paved dev`: the local profiles and endpoints.\n");
    for (profile, user) in PERSONAS {
        let (key, secret) = existing.get(*profile).cloned().unwrap_or_else(|| {
            (
                format!("AKIA{}", random(16, upper)),
                random(40, secret_chars),
            )
        });
        let arn = format!("arn:aws:iam::{account}:user/{user}");
        credentials.push_str(&format!(
            "\n[{profile}]\n# {arn}\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        ));
        config.push_str(&format!(
            "\n[profile {profile}]\nregion = {region}\nservices = paved-dev\n"
        ));
        profiles.push((profile.to_string(), key, secret, arn));
    }
    config.push_str(&format!(
        "\n[services paved-dev]\nproton =\n  endpoint_url = {api}\ns3 =\n  endpoint_url = {aws}\ncloudformation =\n  endpoint_url = {aws}\n"
    ));
    write_private(&credentials_file, &credentials)?;
    write_private(&config_file, &config)?;
    Ok(Identities {
        profiles,
        credentials_file,
        config_file,
    })
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Makes each persona an IAM user of the local AWS, so that `aws iam tag-user` (against the
/// local AWS endpoint) gives it the tags groups by principal tag match, as IAM does in AWS.
pub async fn register(
    sdk: &aws_config::SdkConfig,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let iam = aws_sdk_iam::Client::new(sdk);
    for (_, user) in PERSONAS {
        match iam.create_user().user_name(*user).send().await {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_entity_already_exists_exception()) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// The deployment roles of the README's walkthroughs, made in the local AWS as a platform team
/// makes them in its account: trusting CloudFormation, which deploys under them. paved checks
/// that a role it is given exists and trusts CloudFormation.
pub const LOCAL_ROLES: &[&str] = &["proton-service", "proton-components", "paved-pipeline"];

pub async fn ensure_roles(
    sdk: &aws_config::SdkConfig,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let iam = aws_sdk_iam::Client::new(sdk);
    let trust = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        paved_core::domain::roles::trust_statement(paved_core::domain::roles::CLOUDFORMATION)
    );
    for role in LOCAL_ROLES {
        match iam
            .create_role()
            .role_name(*role)
            .assume_role_policy_document(&trust)
            .send()
            .await
        {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_entity_already_exists_exception()) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
