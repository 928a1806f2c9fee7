//! Constrained values of the Proton model. Each one can only exist once it has been checked.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Proton resource name: 1 to 100 characters, `^[0-9A-Za-z]+[0-9A-Za-z_\-]*$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceName(String);

impl ResourceName {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let len = value.chars().count();
        if !(1..=100).contains(&len) {
            return Err(format!("must be 1 to 100 characters long, got {len}"));
        }
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !first_ok || !rest_ok {
            return Err(format!(
                "{value:?} must start with a letter or digit and hold only letters, digits, '_' and '-'"
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl From<ResourceName> for String {
    fn from(value: ResourceName) -> Self {
        value.0
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One part of a template version number (`^(0|([1-9]{1}\d*))$`, at most 20 characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionPart(pub u64);

impl VersionPart {
    pub fn parse(value: &str) -> Result<Self, String> {
        let canonical = value == "0"
            || (value.starts_with(|c: char| ('1'..='9').contains(&c))
                && value.chars().all(|c| c.is_ascii_digit()));
        if !canonical || value.len() > 20 {
            return Err(format!("{value:?} is not a version number (0, 1, 2, ...)"));
        }
        value
            .parse()
            .map(Self)
            .map_err(|_| format!("{value:?} is too large for a version number"))
    }
}

impl<'de> Deserialize<'de> for VersionPart {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

impl Serialize for VersionPart {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl fmt::Display for VersionPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `TryFrom<String>` through `parse`, and back into `String`, for serde.
macro_rules! string_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

/// Defines a string newtype whose length (in characters) and characters are checked on parse.
macro_rules! bounded_string {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $allowed:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, String> {
                let value = value.into();
                let len = value.chars().count();
                if !($min..=$max).contains(&len) {
                    return Err(format!("must be {} to {} characters long, got {len}", $min, $max));
                }
                let allowed: fn(char) -> bool = $allowed;
                if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
                    return Err(format!("must hold only {}, found {bad:?}", $what));
                }
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_conversions!($name);
    };
}

bounded_string!(
    /// A free-text description, at most 500 characters.
    Description, 0, 500, |_| true, "text"
);
bounded_string!(
    /// A display name, 1 to 100 characters.
    DisplayName, 1, 100, |_| true, "text"
);
bounded_string!(
    /// An idempotency token, at most 64 printable ASCII characters.
    ClientToken, 0, 64, |c| ('!'..='~').contains(&c), "printable ASCII characters"
);
bounded_string!(
    /// An S3 object key.
    S3Key, 1, 1024, |_| true, "text"
);
bounded_string!(
    /// An S3 bucket name.
    S3Bucket, 3, 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
    "lowercase letters, digits, '-' and '.'"
);
bounded_string!(
    /// A tag key.
    TagKey, 1, 128, |_| true, "text"
);
bounded_string!(
    /// A tag value.
    TagValue, 0, 256, |_| true, "text"
);

/// An AWS ARN, as the model's `Arn` shape constrains it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Arn(String);

impl Arn {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let well_formed = value.len() <= 200
            && parts.len() == 6
            && parts[0] == "arn"
            && matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov")
            && !parts[2].is_empty()
            && parts[4].len() == 12
            && parts[4].chars().all(|c| c.is_ascii_digit())
            && !parts[5].is_empty();
        if !well_formed {
            return Err(format!(
                "{value:?} is not an ARN (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)"
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Arn {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl From<Arn> for String {
    fn from(value: Arn) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub key: TagKey,
    pub value: TagValue,
}

/// The tags of a request: at most 50 (the model's `TagList`), each key once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tag>", into = "Vec<Tag>")]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub const MAX: usize = 50;
    /// Prefixes a customer's tag key may not have: AWS's own, and the `proton:` tags paved
    /// puts on every stack.
    pub const RESERVED: &'static [&'static str] = &["aws:", "proton:"];

    pub fn parse(tags: Vec<Tag>) -> Result<Self, String> {
        if tags.len() > Self::MAX {
            return Err(format!("at most {} tags, got {}", Self::MAX, tags.len()));
        }
        let mut keys = std::collections::HashSet::new();
        for tag in &tags {
            if let Some(prefix) = Self::RESERVED
                .iter()
                .find(|p| tag.key.as_str().to_ascii_lowercase().starts_with(*p))
            {
                return Err(format!(
                    "tag key {:?}: keys beginning with {prefix:?} are reserved (paved puts its own on the stacks it deploys)",
                    tag.key.as_str()
                ));
            }
            if !keys.insert(&tag.key) {
                return Err(format!("tag key {:?} is given twice", tag.key.as_str()));
            }
        }
        Ok(Self(tags))
    }

    pub fn into_vec(self) -> Vec<Tag> {
        self.0
    }

    pub fn as_slice(&self) -> &[Tag] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Key to value, for policies and stacks.
    pub fn to_map(&self) -> std::collections::BTreeMap<String, String> {
        self.0
            .iter()
            .map(|t| (t.key.as_str().to_string(), t.value.as_str().to_string()))
            .collect()
    }
}

impl TryFrom<Vec<Tag>> for Tags {
    type Error = String;
    fn try_from(value: Vec<Tag>) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl From<Tags> for Vec<Tag> {
    fn from(value: Tags) -> Self {
        value.0
    }
}

/// A repository as services name it (`repositoryId`: `owner/name`, a CodeCommit repository):
/// 1 to 200 characters (the model's limit), none of them whitespace, a control character, a
/// quote or a backslash, which no Git host allows in a repository's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepositoryId(String);

impl RepositoryId {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let count = value.chars().count();
        if !(1..=200).contains(&count) {
            return Err(format!("must be 1 to 200 characters long, got {count}"));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '`'))
        {
            return Err(format!("{bad:?} cannot be part of a repository id"));
        }
        Ok(Self(value))
    }
}

string_conversions!(RepositoryId);

/// A Git branch name: 1 to 200 characters (the model's limit) that Git accepts as a branch
/// (`git check-ref-format --branch`): no whitespace or control characters, none of `~^:?*[\\`,
/// no `..` or `@{`, not starting with `-` or `/`, not ending with `/`, `.` or `.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BranchName(String);

impl BranchName {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let count = value.chars().count();
        if !(1..=200).contains(&count) {
            return Err(format!("must be 1 to 200 characters long, got {count}"));
        }
        if let Some(bad) = value.chars().find(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\' | '"' | '\'')
        }) {
            return Err(format!("{bad:?} cannot be part of a Git branch name"));
        }
        let refused = value.contains("..")
            || value.contains("@{")
            || value.contains("//")
            || value.starts_with(['-', '/'])
            || value.ends_with(['/', '.'])
            || value.ends_with(".lock")
            || value == "@";
        if refused {
            return Err(format!("{value:?} is not a Git branch name"));
        }
        Ok(Self(value))
    }
}

string_conversions!(BranchName);

/// Seconds since the Unix epoch, with millisecond precision, as Proton sends timestamps.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub f64);

impl Timestamp {
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(since.as_millis() as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_follow_the_model_pattern() {
        assert!(ResourceName::parse("vpc-env").is_ok());
        assert!(ResourceName::parse("a_b-9").is_ok());
        assert!(ResourceName::parse("-leading").is_err());
        assert!(ResourceName::parse("has space").is_err());
        assert!(ResourceName::parse("").is_err());
        assert!(ResourceName::parse("x".repeat(100)).is_ok());
        assert!(ResourceName::parse("x".repeat(101)).is_err());
        assert!(ResourceName::parse("é").is_err());
    }

    #[test]
    fn version_parts_reject_leading_zeros_and_signs() {
        assert_eq!(VersionPart::parse("0").unwrap().0, 0);
        assert_eq!(VersionPart::parse("12").unwrap().0, 12);
        for bad in ["01", "-1", "1.0", "", "a", "+2", "99999999999999999999"] {
            assert!(VersionPart::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn client_tokens_are_printable_ascii_up_to_64() {
        assert!(ClientToken::parse("abc-123_!~").is_ok());
        assert!(ClientToken::parse("with space").is_err());
        assert!(ClientToken::parse("x".repeat(65)).is_err());
    }

    #[test]
    fn tags_are_at_most_fifty_with_each_key_once() {
        let tag = |k: &str| Tag {
            key: TagKey::parse(k).unwrap(),
            value: TagValue::parse("v").unwrap(),
        };
        assert!(Tags::parse((0..50).map(|i| tag(&format!("k{i}"))).collect()).is_ok());
        assert!(Tags::parse((0..51).map(|i| tag(&format!("k{i}"))).collect()).is_err());
        assert!(Tags::parse(vec![tag("a"), tag("a")]).is_err());
        for reserved in ["aws:cost", "AWS:x", "proton:service"] {
            assert!(
                Tags::parse(vec![tag(reserved)])
                    .unwrap_err()
                    .contains("reserved")
            );
        }
        assert!(Tags::parse(vec![tag("team:aws:x")]).is_ok());
    }

    #[test]
    fn repository_ids_and_branches_are_what_git_hosts_allow() {
        assert!(RepositoryId::parse("acme/web").is_ok());
        assert!(RepositoryId::parse("x".repeat(200)).is_ok());
        for bad in ["", "a b", "a'b", "a\nb", "a\"b"] {
            assert!(RepositoryId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RepositoryId::parse("x".repeat(201)).is_err());
        for good in ["main", "feature/x-1", "release-2.0", "users/me@example"] {
            assert!(BranchName::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "", "a b", "-x", "x/", "x.lock", "a..b", "a@{b", "a:b", "x.", "a\n", "'",
        ] {
            assert!(BranchName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(BranchName::parse("x".repeat(201)).is_err());
    }

    #[test]
    fn arns_need_partition_service_and_account() {
        assert!(Arn::parse("arn:aws:kms:us-east-1:123456789012:key/abc").is_ok());
        assert!(Arn::parse("arn:aws:kms:us-east-1:1234:key/abc").is_err());
        assert!(Arn::parse("not-an-arn").is_err());
    }
}
