//! Provisioning engines: what turns a rendered template into running infrastructure.

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
    #[cfg(test)]
    #[serde(rename = "SCRIPTED")]
    Scripted,
}

impl ProvisioningEngine {
    /// Proton's `provisioningEngine` on provisioned resources.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::CloudFormation => "CLOUDFORMATION",
            #[cfg(test)]
            Self::Scripted => "SCRIPTED",
        }
    }
}
