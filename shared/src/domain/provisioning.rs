//! Provisioning engines: what turns a rendered template into running infrastructure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The engine a target is provisioned by, recorded on the target when it is first deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ProvisioningEngine {
    /// CloudFormation stacks, deployed through change sets.
    #[default]
    #[serde(rename = "CLOUDFORMATION")]
    CloudFormation,
    /// The scripted engine of the tests: it proves the kernel and the state machines are
    /// engine-neutral.
    #[cfg(any(test, feature = "testing"))]
    #[serde(rename = "SCRIPTED")]
    Scripted,
}

impl ProvisioningEngine {
    /// Proton's `provisioningEngine` on provisioned resources.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::CloudFormation => "CLOUDFORMATION",
            #[cfg(any(test, feature = "testing"))]
            Self::Scripted => "SCRIPTED",
        }
    }
}

/// The most tags a CloudFormation stack (and most resources it tags) can carry.
pub const MAX_STACK_TAGS: usize = 50;

/// The tags a provisioned target carries: paved's own `proton:*` tags (the keys Proton put on
/// its stacks, so that cost reports and role conditions written for Proton keep working),
/// then the customer's, the first of `customer` winning a key given twice. A target carries at
/// most [`MAX_STACK_TAGS`]: customer tags beyond that are left off, in key order, and named in
/// the second value so the deployment can say so.
pub fn stack_tags(
    managed: &[(&str, String)],
    customer: &[&crate::domain::names::Tags],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut tags: BTreeMap<String, String> = managed
        .iter()
        .map(|(k, v)| (format!("proton:{k}"), v.clone()))
        .collect();
    let mut own = BTreeMap::new();
    for set in customer.iter().rev() {
        own.extend(set.to_map());
    }
    let room = MAX_STACK_TAGS.saturating_sub(tags.len());
    let left_off = own.keys().skip(room).cloned().collect();
    tags.extend(own.into_iter().take(room));
    (tags, left_off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::{Tag, TagKey, TagValue, Tags};

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        Tags::parse(
            pairs
                .iter()
                .map(|(k, v)| Tag {
                    key: TagKey::parse(*k).unwrap(),
                    value: TagValue::parse(*v).unwrap(),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn managed_tags_come_first_and_the_nearest_customer_tag_wins() {
        let instance = tags(&[("team", "web"), ("cost-center", "42")]);
        let service = tags(&[("team", "platform"), ("owner", "ana")]);
        let (all, left_off) = stack_tags(
            &[("service", "arn:svc".into()), ("account", "123".into())],
            &[&instance, &service],
        );
        assert_eq!(all["proton:service"], "arn:svc");
        assert_eq!(all["proton:account"], "123");
        assert_eq!(all["team"], "web", "the instance's own value wins");
        assert_eq!(all["owner"], "ana");
        assert_eq!(all.len(), 5);
        assert!(left_off.is_empty());
    }

    #[test]
    fn a_stack_carries_at_most_fifty_tags_and_says_which_were_left_off() {
        let many: Vec<(String, String)> =
            (0..50).map(|i| (format!("k{i:02}"), "v".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let own = tags(&many);
        let managed = [
            ("account", "1".to_string()),
            ("environment", "e".to_string()),
        ];
        let (all, left_off) = stack_tags(&managed, &[&own]);
        assert_eq!(all.len(), MAX_STACK_TAGS);
        assert!(all.contains_key("proton:account") && all.contains_key("proton:environment"));
        assert_eq!(left_off, vec!["k48".to_string(), "k49".to_string()]);
    }
}
