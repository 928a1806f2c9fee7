//! Principal tags from IAM: `ListUserTags` for a user, `ListRoleTags` for a role or an
//! assumed-role session's role (IAM names are unique in an account whatever their path). Other
//! principals (the account root, federated users) carry no IAM tags.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use aws_sdk_iam::error::ProvideErrorMetadata;

use crate::domain::access::Principal;
use crate::ports::{PrincipalDirectory, StoreError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
