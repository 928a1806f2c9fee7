//! Principal tags from IAM: `ListUserTags` for a user, `ListRoleTags` for a role or an
//! assumed-role session's role (IAM names are unique in an account whatever their path). Other
//! principals (the account root, federated users) carry no IAM tags. And the trust policies of
//! the roles paved is asked to deploy under (`GetRole`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use aws_sdk_iam::error::ProvideErrorMetadata;

use crate::domain::access::Principal;
use crate::ports::{PrincipalDirectory, RoleTrust, Roles, StoreError};

pub struct IamDirectory {
    client: Client,
}

impl IamDirectory {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// What to ask IAM about: a user's or a role's name.
#[derive(Debug, PartialEq, Eq)]
enum Named<'a> {
    User(&'a str),
    Role(&'a str),
}

fn named(arn: &str) -> Option<Named<'_>> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, service, _, _, resource] = parts.as_slice() else {
        return None;
    };
    match *service {
        "iam" => {
            let (kind, path) = resource.split_once('/')?;
            let name = path.rsplit('/').next()?;
            match kind {
                "user" => Some(Named::User(name)),
                "role" => Some(Named::Role(name)),
                _ => None,
            }
        }
        "sts" => {
            let rest = resource.strip_prefix("assumed-role/")?;
            Some(Named::Role(rest.split('/').next()?))
        }
        _ => None,
    }
}

fn failed<E>(error: E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error.code() {
        Some("Throttling" | "ThrottlingException") => StoreError::Throttled(Box::new(error)),
        _ => StoreError::Backend(Box::new(error)),
    }
}

#[async_trait]
impl PrincipalDirectory for IamDirectory {
    async fn tags(&self, principal: &Principal) -> Result<BTreeMap<String, String>, StoreError> {
        match self.read(principal).await {
            Err(StoreError::Backend(error))
                if error
                    .downcast_ref::<aws_sdk_iam::Error>()
                    .is_some_and(|e| e.code() == Some("NoSuchEntity")) =>
            {
                // Not an IAM user or role of this account (another account's, or one deleted
                // since it signed): it carries no tags paved can read.
                Ok(BTreeMap::new())
            }
            other => other,
        }
    }
}

impl IamDirectory {
    async fn read(&self, principal: &Principal) -> Result<BTreeMap<String, String>, StoreError> {
        let tags = match named(&principal.arn) {
            None => return Ok(BTreeMap::new()),
            Some(Named::User(name)) => {
                self.client
                    .list_user_tags()
                    .user_name(name)
                    .send()
                    .await
                    .map_err(|e| failed(aws_sdk_iam::Error::from(e.into_service_error())))?
                    .tags
            }
            Some(Named::Role(name)) => {
                self.client
                    .list_role_tags()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(|e| failed(aws_sdk_iam::Error::from(e.into_service_error())))?
                    .tags
            }
        };
        Ok(tags.into_iter().map(|t| (t.key, t.value)).collect())
    }
}

/// IAM hands policy documents URL-encoded (RFC 3986); the SDK does not decode them.
fn url_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match text
                    .get(i + 1..i + 3)
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or(())
                {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait]
impl Roles for IamDirectory {
    async fn trust(&self, role_arn: &str) -> Result<RoleTrust, StoreError> {
        let Some(Named::Role(name)) = named(role_arn) else {
            return Ok(RoleTrust::Missing);
        };
        match self.client.get_role().role_name(name).send().await {
            Ok(found) => Ok(found
                .role
                .and_then(|r| r.assume_role_policy_document)
                .map_or(RoleTrust::Missing, |doc| {
                    RoleTrust::Policy(if doc.trim_start().starts_with('{') {
                        doc
                    } else {
                        url_decoded(&doc)
                    })
                })),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(RoleTrust::Missing)
            }
            Err(error) => Err(failed(aws_sdk_iam::Error::from(error.into_service_error()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_url_decoded() {
        assert_eq!(
            url_decoded("%7B%22Version%22%3A%222012-10-17%22%7D"),
            r#"{"Version":"2012-10-17"}"#
        );
        assert_eq!(url_decoded("100%"), "100%");
    }

    #[test]
    fn users_roles_and_sessions_are_named_by_their_last_path_segment() {
        assert_eq!(
            named("arn:aws:iam::123456789012:user/team/ana"),
            Some(Named::User("ana"))
        );
        assert_eq!(
            named("arn:aws:iam::123456789012:role/service-role/Deployer"),
            Some(Named::Role("Deployer"))
        );
        assert_eq!(
            named("arn:aws:sts::123456789012:assumed-role/Deployer/ci-run-7"),
            Some(Named::Role("Deployer"))
        );
        assert_eq!(named("arn:aws:iam::123456789012:root"), None);
        assert_eq!(named("arn:aws:sts::123456789012:federated-user/bob"), None);
    }
}
