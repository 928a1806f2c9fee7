//! Source pushes: what a push is, the events it arrives as (CodeCommit's `referenceUpdated`,
//! paved's own push event, a signed GitHub webhook), and what a burst of pushes to one service
//! does (the coalescing policy).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::names::Timestamp;

/// The EventBridge source and detail-type of paved's push event, which any Git host (or a
/// script) can put on the bus: `detail = {"repositoryId", "branchName", "commitId"}`.
pub const PUSH_SOURCE: &str = "paved.push";
pub const PUSH_DETAIL_TYPE: &str = "Source Push";
pub const CODECOMMIT_SOURCE: &str = "aws.codecommit";
pub const CODECOMMIT_DETAIL_TYPE: &str = "CodeCommit Repository State Change";

/// The EventBridge patterns of the push rules: CodeCommit branch updates and paved's push
/// event. `infra/template.yaml` uses these (a test checks it) and `paved dev` creates them.
pub fn rule_patterns() -> [(&'static str, Json); 2] {
    [
        (
            "CodeCommitPushes",
            serde_json::json!({
                "source": [CODECOMMIT_SOURCE],
                "detail-type": [CODECOMMIT_DETAIL_TYPE],
                "detail": {
                    "event": ["referenceCreated", "referenceUpdated"],
                    "referenceType": ["branch"],
                },
            }),
        ),
        (
            "SourcePushes",
            serde_json::json!({ "source": [PUSH_SOURCE], "detail-type": [PUSH_DETAIL_TYPE] }),
        ),
    ]
}

/// A signed GitHub delivery is accepted this long after the push it reports (clock skew and
/// GitHub's own retries included); older ones are refused as possible replays.
pub const WEBHOOK_FRESHNESS_SECONDS: i64 = 15 * 60;

/// How far ahead of paved's clock a delivery may be dated (clocks disagree a little).
pub const WEBHOOK_CLOCK_SKEW_SECONDS: i64 = 5 * 60;

/// Where a push was reported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushSource {
    CodeCommit,
    GitHub,
    Paved,
}

/// A push to a branch: the repository as services name it (`repositoryId`), the branch, and the
/// commit the branch now points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Push {
    pub repository_id: String,
    pub branch: String,
    pub commit_id: String,
    pub source: PushSource,
}

impl Push {
    fn checked(self) -> Result<Self, String> {
        let plain = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
        if !plain(&self.repository_id) || self.repository_id.len() > 200 {
            return Err("repositoryId: must be 1 to 200 characters, no control characters".into());
        }
        if !plain(&self.branch) || self.branch.len() > 255 {
            return Err("branchName: must be 1 to 255 characters, no control characters".into());
        }
        let hex = self.commit_id.chars().all(|c| c.is_ascii_hexdigit());
        if !hex || !(7..=64).contains(&self.commit_id.len()) {
            return Err(format!(
                "commitId: {:?} is not a commit id (7 to 64 hexadecimal digits)",
                self.commit_id
            ));
        }
        Ok(self)
    }
}

#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    detail: Json,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeCommitDetail {
    event: String,
    repository_name: String,
    reference_type: String,
    reference_name: String,
    commit_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PavedDetail {
    repository_id: String,
    branch_name: String,
    commit_id: String,
    /// Who reported the push, when paved relays it (`github` for its webhook).
    #[serde(default)]
    provider: Option<String>,
}

/// The push an EventBridge event reports; `Ok(None)` for an event that is no branch push
/// (a tag, a deleted branch, another kind of event), which is logged and dropped.
pub fn from_event(event: &Json) -> Result<Option<Push>, String> {
    let envelope: Envelope = serde_json::from_value(event.clone())
        .map_err(|e| format!("not an EventBridge event: {e}"))?;
    match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        (CODECOMMIT_SOURCE, CODECOMMIT_DETAIL_TYPE) => {
            let detail: CodeCommitDetail = serde_json::from_value(envelope.detail)
                .map_err(|e| format!("CodeCommit event detail: {e}"))?;
            let updated = matches!(
                detail.event.as_str(),
                "referenceUpdated" | "referenceCreated"
            );
            match (updated, detail.reference_type.as_str(), detail.commit_id) {
                (true, "branch", Some(commit_id)) => Push {
                    // CodeCommit repositories are named by services as their repositoryId.
                    repository_id: detail.repository_name,
                    branch: detail.reference_name,
                    commit_id,
                    source: PushSource::CodeCommit,
                }
                .checked()
                .map(Some),
                _ => Ok(None),
            }
        }
        (PUSH_SOURCE, PUSH_DETAIL_TYPE) => {
            let detail: PavedDetail = serde_json::from_value(envelope.detail)
                .map_err(|e| format!("paved push event detail: {e}"))?;
            Push {
                repository_id: detail.repository_id,
                branch: detail.branch_name,
                commit_id: detail.commit_id,
                source: match detail.provider.as_deref() {
                    Some("github") => PushSource::GitHub,
                    _ => PushSource::Paved,
                },
            }
            .checked()
            .map(Some)
        }
        (source, detail_type) => Err(format!(
            "an event from {source:?} ({detail_type:?}) is not a source push"
        )),
    }
}

/// The detail of paved's push event for a push.
pub fn event_detail(push: &Push) -> Json {
    let mut detail = serde_json::json!({
        "repositoryId": push.repository_id,
        "branchName": push.branch,
        "commitId": push.commit_id,
    });
    if push.source == PushSource::GitHub {
        detail["provider"] = "github".into();
    }
    detail
}

/// Why a webhook delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the request is not signed (X-Hub-Signature-256 is missing)")]
    Unsigned,
    #[error("X-Hub-Signature-256 is not of the form sha256=<64 hexadecimal digits>")]
    MalformedSignature,
    #[error("the signature does not match the body")]
    Forged,
    #[error(
        "the push was made {age} s ago; signed deliveries older than {WEBHOOK_FRESHNESS_SECONDS} s are refused as possible replays"
    )]
    Stale { age: i64 },
    /// Dated later than clocks can disagree: it would stay fresh for longer than deliveries
    /// are remembered, and so could be replayed.
    #[error(
        "the push is dated {ahead} s in the future; signed deliveries more than {WEBHOOK_CLOCK_SKEW_SECONDS} s ahead are refused"
    )]
    FromTheFuture { ahead: i64 },
    #[error("this delivery was received before")]
    Replayed,
    #[error("the payload is not a GitHub push: {0}")]
    Payload(String),
}

/// Checks GitHub's `X-Hub-Signature-256` header (`sha256=` and the hex HMAC-SHA256 of the body
/// under the webhook secret). The comparison is ring's, in constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::Unsigned)?;
    let digest = header
        .strip_prefix("sha256=")
        .filter(|hex| hex.len() == 64)
        .ok_or(WebhookError::MalformedSignature)?;
    let tag = hex::decode(digest).map_err(|_| WebhookError::MalformedSignature)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, body, &tag).map_err(|_| WebhookError::Forged)
}

/// The header value GitHub would send for `body`.
#[cfg(test)]
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// A key that names a delivery by its signed content, so that a replay with a new (unsigned)
/// delivery id header is still recognised.
pub fn delivery_key(body: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, body).as_ref())
}

#[derive(Deserialize)]
struct GitHubPush {
    #[serde(rename = "ref")]
    reference: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: GitHubRepository,
}

#[derive(Deserialize)]
struct GitHubRepository {
    full_name: String,
    /// When the push happened (seconds since the epoch; GitHub sends a number for push events).
    pushed_at: Option<Json>,
}

/// A GitHub `push` delivery whose signature was verified: the push it reports (`None` for a
/// tag or a deleted branch), checked to be fresh at `now` (seconds since the epoch).
pub fn github_push(body: &[u8], now: i64) -> Result<Option<Push>, WebhookError> {
    let payload: GitHubPush =
        serde_json::from_slice(body).map_err(|e| WebhookError::Payload(e.to_string()))?;
    let pushed_at = payload
        .repository
        .pushed_at
        .as_ref()
        .and_then(Json::as_i64)
        .ok_or_else(|| WebhookError::Payload("repository.pushed_at is missing".into()))?;
    let age = now - pushed_at;
    if age > WEBHOOK_FRESHNESS_SECONDS {
        return Err(WebhookError::Stale { age });
    }
    if -age > WEBHOOK_CLOCK_SKEW_SECONDS {
        return Err(WebhookError::FromTheFuture { ahead: -age });
    }
    let Some(branch) = payload.reference.strip_prefix("refs/heads/") else {
        return Ok(None);
    };
    if payload.deleted {
        return Ok(None);
    }
    Push {
        repository_id: payload.repository.full_name,
        branch: branch.to_string(),
        commit_id: payload.after,
        source: PushSource::GitHub,
    }
    .checked()
    .map(Some)
    .map_err(WebhookError::Payload)
}

/// How a pipeline run that paved started ended (CodePipeline's execution statuses, folded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
    Superseded,
}

/// A push as recorded against a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedPush {
    pub commit_id: String,
    pub source: PushSource,
    pub received_at: Timestamp,
}

/// One redeploy: the push, the Step Functions execution that runs it and the pipeline
/// execution it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redeploy {
    pub push: ReceivedPush,
    pub execution: String,
    pub pipeline_execution_id: Option<String>,
    pub status: RunStatus,
    pub status_message: Option<String>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

/// A service's redeploys: at most one running; pushes that arrive meanwhile coalesce into one
/// pending push, the newest, started when the running one ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redeploys {
    pub running: Option<Redeploy>,
    pub pending: Option<ReceivedPush>,
    pub last: Option<Redeploy>,
    /// Pushes that were replaced by a newer one before they ran.
    #[serde(default)]
    pub coalesced: u64,
}

/// What to do with a push that reached a service.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Nothing runs: start the pipeline for it (it is now `running`).
    Start,
    /// A redeploy runs: the push waits as `pending`, replacing the one that waited before.
    Queued { replaced: Option<ReceivedPush> },
    /// This push (or this execution) was seen already: do nothing.
    Duplicate,
    /// A newer push was received before this one got here: its redeploy covers this one.
    Superseded,
}

impl Redeploys {
    /// Admits a push arriving through execution `execution`, by the coalescing policy.
    pub fn admit(&mut self, push: ReceivedPush, execution: &str, now: Timestamp) -> Admission {
        let seen = |r: &Option<Redeploy>| {
            r.as_ref()
                .is_some_and(|r| r.execution == execution || r.push.commit_id == push.commit_id)
        };
        if seen(&self.running)
            || self
                .pending
                .as_ref()
                .is_some_and(|p| p.commit_id == push.commit_id)
            || self.last.as_ref().is_some_and(|r| r.execution == execution)
        {
            return Admission::Duplicate;
        }
        let newer = |other: Option<&ReceivedPush>| {
            other.is_some_and(|o| o.received_at.0 > push.received_at.0)
        };
        if newer(self.running.as_ref().map(|r| &r.push))
            || newer(self.pending.as_ref())
            || newer(self.last.as_ref().map(|r| &r.push))
        {
            self.coalesced += 1;
            return Admission::Superseded;
        }
        if self.running.is_some() {
            let replaced = self.pending.replace(push);
            if replaced.is_some() {
                self.coalesced += 1;
            }
            return Admission::Queued { replaced };
        }
        self.running = Some(Redeploy {
            push,
            execution: execution.to_string(),
            pipeline_execution_id: None,
            status: RunStatus::InProgress,
            status_message: None,
            started_at: now,
            ended_at: None,
        });
        Admission::Start
    }

    /// Records how the running redeploy (of `execution`) ended; returns the pending push, to
    /// be started next in an execution of its own.
    pub fn finish(
        &mut self,
        execution: &str,
        status: RunStatus,
        message: Option<String>,
        now: Timestamp,
    ) -> Option<ReceivedPush> {
        let running = self.running.take_if(|r| r.execution == execution)?;
        self.last = Some(Redeploy {
            status,
            status_message: message,
            ended_at: Some(now),
            ..running
        });
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn codecommit_branch_updates_and_paved_events_are_pushes_and_the_rest_is_not() {
        let codecommit = json!({
            "source": "aws.codecommit",
            "detail-type": "CodeCommit Repository State Change",
            "detail": {"event": "referenceUpdated", "repositoryName": "web", "repositoryId": "12345678-aaaa",
                       "referenceType": "branch", "referenceName": "main", "commitId": SHA}
        });
        let push = from_event(&codecommit).unwrap().unwrap();
        assert_eq!(
            (push.repository_id.as_str(), push.branch.as_str()),
            ("web", "main")
        );
        assert_eq!(push.source, PushSource::CodeCommit);
        let mut tag = codecommit.clone();
        tag["detail"]["referenceType"] = json!("tag");
        assert_eq!(from_event(&tag).unwrap(), None);
        let mut deleted = codecommit.clone();
        deleted["detail"]["event"] = json!("referenceDeleted");
        assert_eq!(from_event(&deleted).unwrap(), None);

        let paved = json!({"source": "paved.push", "detail-type": "Source Push",
                           "detail": {"repositoryId": "acme/web", "branchName": "main", "commitId": SHA}});
        assert_eq!(
            from_event(&paved).unwrap().unwrap().repository_id,
            "acme/web"
        );
        // The webhook's relayed pushes keep saying they came from GitHub.
        let relayed = Push {
            source: PushSource::GitHub,
            ..from_event(&paved).unwrap().unwrap()
        };
        let mut again = paved.clone();
        again["detail"] = event_detail(&relayed);
        assert_eq!(from_event(&again).unwrap().unwrap(), relayed);
        let mut bad = paved.clone();
        bad["detail"]["commitId"] = json!("not-a-commit");
        assert!(from_event(&bad).unwrap_err().contains("commitId"));
        let mut extra = paved.clone();
        extra["detail"]["branch"] = json!("main");
        assert!(from_event(&extra).is_err(), "unknown members are refused");
        assert!(
            from_event(&json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}))
                .is_err()
        );
    }

    #[test]
    fn signatures_are_checked_whole_and_in_constant_time() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        // GitHub's documented example of this secret and payload.
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, body), expected);
        verify_signature(secret, body, Some(expected)).unwrap();
        assert_eq!(
            verify_signature(secret, body, None),
            Err(WebhookError::Unsigned)
        );
        assert_eq!(
            verify_signature(secret, b"Hello, World?", Some(expected)),
            Err(WebhookError::Forged)
        );
        assert_eq!(
            verify_signature(b"another secret", body, Some(expected)),
            Err(WebhookError::Forged)
        );
        for malformed in [
            "sha1=757107ea",
            "sha256=zz",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            &expected[..70],
        ] {
            assert_eq!(
                verify_signature(secret, body, Some(malformed)),
                Err(WebhookError::MalformedSignature),
                "{malformed}"
            );
        }
        // A tag differing in its last byte only is as forged as one differing in the first.
        let mut last = expected.to_string();
        last.replace_range(70.., "6");
        assert_eq!(
            verify_signature(secret, body, Some(&last)),
            Err(WebhookError::Forged)
        );
        assert_eq!(delivery_key(body), delivery_key(b"Hello, World!"));
        assert_ne!(delivery_key(body), delivery_key(b"Hello, World?"));
    }

    #[test]
    fn github_pushes_must_be_fresh_and_name_a_branch() {
        let body = |reference: &str, pushed_at: i64, deleted: bool| {
            serde_json::to_vec(&json!({"ref": reference, "after": SHA, "deleted": deleted,
                "repository": {"full_name": "acme/web", "pushed_at": pushed_at}}))
            .unwrap()
        };
        let now = 1_800_000_000;
        let push = github_push(&body("refs/heads/main", now - 5, false), now)
            .unwrap()
            .unwrap();
        assert_eq!(
            (push.repository_id.as_str(), push.branch.as_str()),
            ("acme/web", "main")
        );
        assert_eq!(
            github_push(&body("refs/tags/v1", now, false), now).unwrap(),
            None
        );
        assert_eq!(
            github_push(&body("refs/heads/gone", now, true), now).unwrap(),
            None
        );
        let stale = github_push(&body("refs/heads/main", now - 3600, false), now).unwrap_err();
        assert_eq!(stale, WebhookError::Stale { age: 3600 });
        let ahead = github_push(&body("refs/heads/main", now + 3600, false), now).unwrap_err();
        assert_eq!(ahead, WebhookError::FromTheFuture { ahead: 3600 });
        assert!(github_push(&body("refs/heads/main", now + 60, false), now).is_ok());
        assert!(matches!(
            github_push(b"{}", now),
            Err(WebhookError::Payload(_))
        ));
    }

    #[test]
    fn the_sam_template_routes_pushes_with_the_same_rules_as_paved_dev() {
        let path = format!("{}/../infra/template.yaml", env!("CARGO_MANIFEST_DIR"));
        let template: yaml_serde::Value =
            yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let events = &template["Resources"]["PushFunction"]["Properties"]["Events"];
        for (name, pattern) in rule_patterns() {
            let rule = &events[name];
            assert_eq!(rule["Type"].as_str(), Some("EventBridgeRule"), "{name}");
            let in_template = serde_json::to_value(&rule["Properties"]["Pattern"]).unwrap();
            assert_eq!(in_template, pattern, "{name}");
        }
    }

    fn received(commit: &str) -> ReceivedPush {
        received_at(commit, 1.0)
    }

    fn received_at(commit: &str, at: f64) -> ReceivedPush {
        ReceivedPush {
            commit_id: commit.into(),
            source: PushSource::GitHub,
            received_at: Timestamp(at),
        }
    }

    #[test]
    fn a_push_that_arrives_after_a_newer_one_is_superseded() {
        let now = Timestamp(9.0);
        let mut redeploys = Redeploys::default();
        assert_eq!(
            redeploys.admit(received_at("bbbbbbb", 2.0), "x-b", now),
            Admission::Start
        );
        // The older push's execution got here late: the running build is of a newer state.
        assert_eq!(
            redeploys.admit(received_at("aaaaaaa", 1.0), "x-a", now),
            Admission::Superseded
        );
        assert_eq!(
            redeploys.admit(received_at("ddddddd", 4.0), "x-d", now),
            Admission::Queued { replaced: None }
        );
        assert_eq!(
            redeploys.admit(received_at("ccccccc", 3.0), "x-c", now),
            Admission::Superseded
        );
        assert_eq!(redeploys.pending.as_ref().unwrap().commit_id, "ddddddd");
        assert_eq!(redeploys.coalesced, 2);
        redeploys.finish("x-b", RunStatus::Succeeded, None, now);
        assert_eq!(
            redeploys.admit(received_at("ddddddd", 4.0), "x-d2", now),
            Admission::Start
        );
        redeploys.finish("x-d2", RunStatus::Succeeded, None, now);
        assert_eq!(
            redeploys.admit(received_at("ccccccc", 3.0), "x-c", now),
            Admission::Superseded
        );
    }

    #[test]
    fn a_burst_of_pushes_runs_one_redeploy_then_one_for_the_newest() {
        let now = Timestamp(2.0);
        let mut redeploys = Redeploys::default();
        assert_eq!(
            redeploys.admit(received("aaaaaaa"), "x-a", now),
            Admission::Start
        );
        assert_eq!(
            redeploys.admit(received("aaaaaaa"), "x-a", now),
            Admission::Duplicate
        );
        assert_eq!(
            redeploys.admit(received("bbbbbbb"), "x-b", now),
            Admission::Queued { replaced: None }
        );
        let queued = redeploys.admit(received("ccccccc"), "x-c", now);
        assert_eq!(
            queued,
            Admission::Queued {
                replaced: Some(received("bbbbbbb"))
            }
        );
        assert_eq!(
            redeploys.admit(received("ccccccc"), "x-c-again", now),
            Admission::Duplicate
        );
        assert_eq!(redeploys.coalesced, 1);
        // Ending another execution changes nothing; ending the running one hands over c.
        assert_eq!(
            redeploys.finish("x-b", RunStatus::Succeeded, None, now),
            None
        );
        let next = redeploys
            .finish("x-a", RunStatus::Succeeded, None, now)
            .unwrap();
        assert_eq!(next, received("ccccccc"));
        assert_eq!(
            redeploys.last.as_ref().unwrap().status,
            RunStatus::Succeeded
        );
        assert!(redeploys.running.is_none() && redeploys.pending.is_none());
        // The follow-up execution for it starts.
        assert_eq!(
            redeploys.admit(received("ccccccc"), "x-c-next", now),
            Admission::Start
        );
        let none = redeploys.finish(
            "x-c-next",
            RunStatus::Failed,
            Some("Build failed".into()),
            now,
        );
        assert_eq!(none, None);
        assert_eq!(
            redeploys.last.unwrap().status_message.as_deref(),
            Some("Build failed")
        );
    }
}
