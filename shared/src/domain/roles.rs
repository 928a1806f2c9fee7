//! Which IAM roles paved deploys under: a role of paved's own account whose name (with its path)
//! matches the configured pattern (IAM wildcards `*` and `?`, the pattern the SAM template lets the
//! task function pass), and never the organization's administrator role.

use super::names::Arn;

/// The role AWS Organizations creates in member accounts for the management account's
/// administrators; paved never deploys under it.
pub const ORGANIZATION_ROLE: &str = "OrganizationAccountAccessRole";

/// Checks that `arn` names a role paved may deploy under; the error says why not.
pub fn check_role(arn: &Arn, account_id: &str, pattern: &str) -> Result<(), String> {
    let text = arn.as_str();
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [_, _, service, region, account, resource] = parts.as_slice() else {
        return Err(format!("{text} is not an IAM role ARN"));
    };
    let Some(role) = resource.strip_prefix("role/") else {
        return Err(format!(
            "{text} is not an IAM role (arn:aws:iam::ACCOUNT:role/NAME)"
        ));
    };
    if *service != "iam" || !region.is_empty() || role.is_empty() {
        return Err(format!(
            "{text} is not an IAM role (arn:aws:iam::ACCOUNT:role/NAME)"
        ));
    }
    if *account != account_id {
        return Err(format!(
            "{text} is a role of account {account}; paved deploys under roles of its own account ({account_id})"
        ));
    }
    let name = role.rsplit('/').next().unwrap_or(role);
    if name == ORGANIZATION_ROLE {
        return Err(format!(
            "{text} is the organization's administrator role; paved does not deploy under it"
        ));
    }
    if !wildcard_match(pattern, role) {
        return Err(format!(
            "role {role} does not match the roles paved may pass ({pattern}, the ProtonServiceRolePattern of its deployment)"
        ));
    }
    Ok(())
}

/// The service CloudFormation assumes deployment roles as.
pub const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";

/// Whether a role's trust policy (its `AssumeRolePolicyDocument`, JSON) lets `service` assume
/// it: an `Allow` statement for `sts:AssumeRole` (or a wildcard) whose principal is the service
/// (or `*`). Conditions (`aws:SourceAccount`, ...) are taken to hold: paved cannot evaluate them,
/// and CloudFormation's own refusal still names the role if they do not.
pub fn trusts(policy: &str, service: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let listed = |value: &serde_json::Value| -> Vec<String> {
        match value {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        }
    };
    let statements = match &document["Statement"] {
        serde_json::Value::Array(items) => items.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => vec![],
    };
    statements.iter().any(|statement| {
        let allows = statement["Effect"].as_str() == Some("Allow");
        let assumes = listed(&statement["Action"])
            .iter()
            .any(|a| matches!(a.as_str(), "sts:AssumeRole" | "sts:*" | "*"));
        let principal = &statement["Principal"];
        let trusted = principal.as_str() == Some("*")
            || listed(&principal["Service"]).iter().any(|s| s == service)
            || listed(&principal["AWS"]).iter().any(|a| a == "*");
        allows && assumes && trusted
    })
}

/// What to add to a role's trust policy so that CloudFormation can assume it.
pub fn trust_statement(service: &str) -> String {
    format!(
        r#"{{"Effect": "Allow", "Principal": {{"Service": "{service}"}}, "Action": "sts:AssumeRole"}}"#
    )
}

/// IAM's wildcard matching: `*` any run of characters, `?` any one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_trusts_cloudformation_only_if_its_policy_says_so() {
        let proton_only = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "proton.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
        assert!(!trusts(proton_only, CLOUDFORMATION));
        let both = r#"{"Statement": {"Effect": "Allow", "Principal": {"Service": ["proton.amazonaws.com", "cloudformation.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}}"#;
        assert!(trusts(both, CLOUDFORMATION));
        let denied = r#"{"Statement": [{"Effect": "Deny", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
        assert!(!trusts(denied, CLOUDFORMATION));
        let conditioned = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}]}"#;
        assert!(trusts(conditioned, CLOUDFORMATION));
        assert!(!trusts("not json", CLOUDFORMATION));
        let fix = trust_statement(CLOUDFORMATION);
        let fixed = format!(r#"{{"Statement": [{fix}]}}"#);
        assert!(trusts(&fixed, CLOUDFORMATION), "{fixed}");
    }

    fn arn(text: &str) -> Arn {
        Arn::parse(text).unwrap()
    }

    #[test]
    fn roles_of_the_own_account_matching_the_pattern_are_allowed() {
        let ok = arn("arn:aws:iam::123456789012:role/paved-env");
        assert!(check_role(&ok, "123456789012", "paved-*").is_ok());
        assert!(check_role(&ok, "123456789012", "*").is_ok());
        let pathed = arn("arn:aws:iam::123456789012:role/platform/paved-env");
        assert!(check_role(&pathed, "123456789012", "platform/*").is_ok());
        assert!(check_role(&pathed, "123456789012", "paved-*").is_err());
    }

    #[test]
    fn other_resources_accounts_and_the_organization_role_are_refused() {
        for (text, why) in [
            (
                "arn:aws:sns:us-east-1:123456789012:topic",
                "not an IAM role",
            ),
            ("arn:aws:iam::123456789012:user/alice", "not an IAM role"),
            (
                "arn:aws:iam::210987654321:role/paved-env",
                "account 210987654321",
            ),
            (
                "arn:aws:iam::123456789012:role/OrganizationAccountAccessRole",
                "administrator role",
            ),
            ("arn:aws:iam::123456789012:role/admin", "does not match"),
        ] {
            let error = check_role(&arn(text), "123456789012", "paved-*").unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard_match("paved-*", "paved-"));
        assert!(wildcard_match("a?c*", "abcdef"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*-role", "x-y-role"));
        assert!(!wildcard_match("*-role", "x-y-rolex"));
    }
}
