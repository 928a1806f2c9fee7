//! Environment and service templates, their versions, and the rules of version numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::names::{Arn, Description, DisplayName, ResourceName, Tag, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateKind {
    Environment,
    Service,
}

impl TemplateKind {
    /// How the kind reads in messages: "environment template".
    pub fn noun(self) -> &'static str {
        match self {
            Self::Environment => "environment template",
            Self::Service => "service template",
        }
    }

    /// The resource type in the kind's ARNs.
    pub fn arn_resource(self) -> &'static str {
        match self {
            Self::Environment => "environment-template",
            Self::Service => "service-template",
        }
    }

    /// The kind as paved's fleet operations name it (`templateType`).
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Environment => "ENVIRONMENT",
            Self::Service => "SERVICE",
        }
    }

    /// A `templateType` of paved's fleet operations; the refusal names the member.
    pub fn from_type_name(name: &str) -> Result<Self, String> {
        match name {
            "ENVIRONMENT" => Ok(Self::Environment),
            "SERVICE" => Ok(Self::Service),
            other => Err(format!(
                "templateType: {other} is not ENVIRONMENT or SERVICE"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Provisioning {
    CustomerManaged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VersionStatus {
    RegistrationInProgress,
    RegistrationFailed,
    Draft,
    Published,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComponentSource {
    DirectlyDefined,
}

/// A version number, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionNumber {
    pub major: u64,
    pub minor: u64,
}

impl std::fmt::Display for VersionNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Every version a template has, and the highest minor each major ever had, so that a deleted
/// version's number is never given to another bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionIndex {
    pub statuses: BTreeMap<VersionNumber, VersionStatus>,
    pub last_minors: BTreeMap<u64, u64>,
}

impl VersionIndex {
    /// The number a new version gets: a new minor of `major`, or a new major.
    pub fn next(&self, major: Option<u64>) -> Result<VersionNumber, String> {
        match major {
            None => {
                let major = self.last_minors.keys().next_back().map_or(1, |m| m + 1);
                Ok(VersionNumber { major, minor: 0 })
            }
            Some(major) => match self.last_minors.get(&major) {
                Some(last) => Ok(VersionNumber {
                    major,
                    minor: last + 1,
                }),
                None => Err(format!(
                    "majorVersion {major} does not exist; leave majorVersion out to create a new major version"
                )),
            },
        }
    }

    pub fn insert(&mut self, number: VersionNumber, status: VersionStatus) {
        self.statuses.insert(number, status);
        let last = self.last_minors.entry(number.major).or_insert(number.minor);
        *last = (*last).max(number.minor);
    }

    pub fn set_status(&mut self, number: VersionNumber, status: VersionStatus) {
        self.statuses.insert(number, status);
    }

    pub fn remove(&mut self, number: VersionNumber) {
        self.statuses.remove(&number);
    }

    pub fn contains(&self, number: VersionNumber) -> bool {
        self.statuses.contains_key(&number)
    }

    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
    }

    pub fn has_major(&self, major: u64) -> bool {
        self.statuses.keys().any(|n| n.major == major)
    }

    /// The highest published version: the template's recommended version.
    pub fn recommended(&self) -> Option<VersionNumber> {
        self.published().next_back()
    }

    /// The highest published minor of a major: its recommended minor version.
    pub fn recommended_minor(&self, major: u64) -> Option<u64> {
        self.published()
            .filter(|n| n.major == major)
            .map(|n| n.minor)
            .next_back()
    }

    /// How far a target on `running` is behind the recommended versions: a higher major has
    /// a published version, or its own major has a higher published minor.
    pub fn staleness(&self, running: VersionNumber) -> Staleness {
        match self.recommended() {
            Some(latest) if latest.major > running.major => Staleness::BehindMajor,
            _ => match self.recommended_minor(running.major) {
                Some(minor) if minor > running.minor => Staleness::BehindMinor,
                _ => Staleness::UpToDate,
            },
        }
    }

    /// The closest lower minor of the same major, which a new minor must stay compatible with.
    pub fn previous_minor(&self, number: VersionNumber) -> Option<VersionNumber> {
        self.statuses
            .keys()
            .rfind(|n| n.major == number.major && n.minor < number.minor)
            .copied()
    }

    fn published(&self) -> impl DoubleEndedIterator<Item = VersionNumber> + '_ {
        self.statuses
            .iter()
            .filter(|(_, status)| **status == VersionStatus::Published)
            .map(|(number, _)| *number)
    }

    /// Why a version may not be deleted now, following Proton's rules for recommended versions.
    pub fn deletion_blocker(&self, number: VersionNumber) -> Option<String> {
        if self.recommended() == Some(number) && self.statuses.len() > 1 {
            return Some(format!(
                "version {number} is the recommended version and other versions exist; publish a higher version or delete the others first"
            ));
        }
        let same_major = self
            .statuses
            .keys()
            .filter(|n| n.major == number.major)
            .count();
        if self.recommended_minor(number.major) == Some(number.minor) && same_major > 1 {
            return Some(format!(
                "version {number} is the recommended minor of major {} and other minors exist; delete them first",
                number.major
            ));
        }
        None
    }
}

/// Where a deployed target stands against its template's recommended versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Staleness {
    UpToDate,
    BehindMinor,
    BehindMajor,
}

/// A registered template: its metadata and the index of its versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub kind: TemplateKind,
    pub name: ResourceName,
    pub display_name: Option<DisplayName>,
    pub description: Option<Description>,
    pub encryption_key: Option<Arn>,
    /// `provisioning` of an environment template, `pipelineProvisioning` of a service template.
    pub provisioning: Option<Provisioning>,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
    pub last_modified_at: Timestamp,
    pub versions: VersionIndex,
    /// Bumped on every write; writes are conditional on the value they read.
    pub rev: u64,
}

/// An environment template named by a service template version as one it can run in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompatibleEnvironmentTemplate {
    pub template_name: ResourceName,
    pub major_version: super::names::VersionPart,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateVersion {
    pub kind: TemplateKind,
    pub template_name: ResourceName,
    pub number: VersionNumber,
    pub status: VersionStatus,
    pub status_message: Option<String>,
    pub description: Option<Description>,
    pub schema: String,
    pub compatible_environment_templates: Vec<CompatibleEnvironmentTemplate>,
    pub supported_component_sources: Vec<ComponentSource>,
    /// Where paved keeps its own copy of the registered bundle.
    pub bundle_key: String,
    pub has_pipeline: bool,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
    pub last_modified_at: Timestamp,
    /// How many deployed resources run on this version; it cannot be deleted while above zero.
    pub in_use: u64,
    pub rev: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u64, minor: u64) -> VersionNumber {
        VersionNumber { major, minor }
    }

    #[test]
    fn staleness_is_measured_against_published_versions_only() {
        let mut index = VersionIndex::default();
        index.insert(v(1, 0), VersionStatus::Published);
        index.insert(v(1, 1), VersionStatus::Published);
        index.insert(v(1, 2), VersionStatus::Draft);
        assert_eq!(
            index.staleness(v(1, 1)),
            Staleness::UpToDate,
            "1.2 is a draft"
        );
        assert_eq!(index.staleness(v(1, 0)), Staleness::BehindMinor);
        index.insert(v(2, 0), VersionStatus::Published);
        assert_eq!(index.staleness(v(1, 1)), Staleness::BehindMajor);
        assert_eq!(index.staleness(v(2, 0)), Staleness::UpToDate);
    }

    #[test]
    fn numbering_starts_at_one_zero_and_never_reuses_a_number() {
        let mut index = VersionIndex::default();
        assert_eq!(index.next(None).unwrap(), v(1, 0));
        assert!(index.next(Some(1)).unwrap_err().contains("does not exist"));
        index.insert(v(1, 0), VersionStatus::Draft);
        index.insert(v(1, 1), VersionStatus::Draft);
        assert_eq!(index.next(Some(1)).unwrap(), v(1, 2));
        assert_eq!(index.next(None).unwrap(), v(2, 0));
        index.remove(v(1, 1));
        assert_eq!(
            index.next(Some(1)).unwrap(),
            v(1, 2),
            "1.1 was deleted but is not reused"
        );
    }

    #[test]
    fn the_recommended_version_is_the_highest_published() {
        let mut index = VersionIndex::default();
        index.insert(v(1, 0), VersionStatus::Published);
        index.insert(v(1, 1), VersionStatus::Published);
        index.insert(v(1, 2), VersionStatus::Draft);
        index.insert(v(2, 0), VersionStatus::Draft);
        assert_eq!(index.recommended(), Some(v(1, 1)));
        assert_eq!(index.recommended_minor(1), Some(1));
        assert_eq!(index.recommended_minor(2), None);
        index.set_status(v(2, 0), VersionStatus::Published);
        assert_eq!(index.recommended(), Some(v(2, 0)));
    }

    #[test]
    fn recommended_versions_are_deleted_last() {
        let mut index = VersionIndex::default();
        index.insert(v(1, 0), VersionStatus::Published);
        index.insert(v(1, 1), VersionStatus::Published);
        index.insert(v(2, 0), VersionStatus::Draft);
        assert!(
            index
                .deletion_blocker(v(1, 1))
                .unwrap()
                .contains("recommended version")
        );
        assert!(index.deletion_blocker(v(1, 0)).is_none());
        assert!(index.deletion_blocker(v(2, 0)).is_none());
        index.remove(v(1, 0));
        index.remove(v(2, 0));
        assert!(
            index.deletion_blocker(v(1, 1)).is_none(),
            "the last version can go"
        );
    }

    #[test]
    fn a_new_minor_is_compared_with_the_closest_lower_minor() {
        let mut index = VersionIndex::default();
        index.insert(v(1, 0), VersionStatus::Published);
        index.insert(v(1, 1), VersionStatus::Draft);
        index.insert(v(2, 0), VersionStatus::Draft);
        assert_eq!(index.previous_minor(v(1, 2)), Some(v(1, 1)));
        assert_eq!(index.previous_minor(v(2, 1)), Some(v(2, 0)));
        assert_eq!(index.previous_minor(v(3, 0)), None);
    }
}
