//! paved's own operations (`X-Amz-Target: Paved20261127.<Operation>`, awsJson1_0 like Proton's).
//!
//! - `GetServicePipelineState {serviceName, maxResults?}`: the service's redeploys (running,
//!   pending, last), its pipeline's latest executions and its stage states.
//! - `GetAccessPolicy {version?}`: the access document in force (or a given version):
//!   `{accessPolicy: {version, groups, policies, updatedBy?, updatedAt}}`.
//! - `ListAccessPolicyVersions {maxResults?, nextToken?}`: versions, newest first.
//! - `PutAccessPolicy {groups, policies, expectedVersion}`: a new version, if the document
//!   compiles and `expectedVersion` is still the version in force (else ConflictException).
//! - `GetImportPlan {specs?, templateVersions?, repositories?}`: the stacks Proton left in the
//!   account and region and what adopting each takes (`app::imports`): `{items: [...]}`.
//! - `ImportStacks {same}`: adopts every ready item; `{items, adopted}`. Deploys nothing.
//! - `ConfirmAdoption {resourceArn, confirmation}`: lets an adopted target's next deployment
//!   apply the plan (replacements, removals) its first deployment stopped on.
//! - `GetTemplateFleet {templateName, templateType: ENVIRONMENT|SERVICE}`: every target of a
//!   template with its version, how far behind the recommended one, its last deployment.
//! - `PreviewDeployment {templateName, templateType, templateMajorVersion, templateMinorVersion?,
//!   targets?, spec?}`: every target rendered and planned, nothing applied: per target the diff
//!   of its template and the resource actions, and their sum (`app::fleet::Fleet::preview`).
//! - `RollbackDeployment {deploymentId}`: deploys that deployment's target to the version and
//!   spec it deployed (it must have succeeded; the version must still exist): `{deploymentId}`
//!   of the new deployment.
//! - `StartFleetUpgrade {templateName, templateType, templateMajorVersion, templateMinorVersion?,
//!   environments?, services?, tags?, includePipelines?, waves?, waveSize?, concurrency?,
//!   maxFailures?, approval?, rollbackFailed?, clientToken?}`: plans the waves of a staged
//!   upgrade and starts its execution (`app::upgrades`): `{upgrade}`.
//! - `GetFleetUpgrade {upgradeId}`: the upgrade, each wave and target with its outcome.
//! - `ListFleetUpgrades {maxResults?, nextToken?}`: upgrades, newest first, with their counts.
//! - `GetDeploymentTemplate {deploymentId}`: the template a deployment rendered and handed to
//!   its engine, as kept when it was planned: `{deploymentId, template}`.
//! - `DetectDrift {templateName, templateType}`: compares every target's stack with what paved
//!   deployed (at most 50 targets; the schedule covers any number), waiting up to 20 s:
//!   `{drifts: [...]}`, each recorded and shown by GetTemplateFleet.
//! - `ApproveFleetUpgrade`, `PauseFleetUpgrade`, `ResumeFleetUpgrade`, `CancelFleetUpgrade
//!   {upgradeId}`: approve the wave it waits on; let what runs end and start nothing new; go on;
//!   start nothing new and end once what runs has ended.

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::wire::{ApiError, compact, parse};
use crate::app::imports::ImportRequest;
use crate::domain::access::{AccessDocument, Caller, StoredAccess};
use crate::domain::names::ResourceName;
use crate::domain::push::Redeploy;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StateRequest {
    service_name: ResourceName,
    max_results: Option<u32>,
}

/// paved's own operations, as policies name them (`Paved::Action::"<name>"`).
pub const OPERATIONS: &[&str] = &[
    "GetServicePipelineState",
    "GetAccessPolicy",
    "ListAccessPolicyVersions",
    "PutAccessPolicy",
    "GetImportPlan",
    "ImportStacks",
    "ConfirmAdoption",
    "GetTemplateFleet",
    "RollbackDeployment",
    "PreviewDeployment",
    "StartFleetUpgrade",
    "GetFleetUpgrade",
    "ListFleetUpgrades",
    "ApproveFleetUpgrade",
    "PauseFleetUpgrade",
    "ResumeFleetUpgrade",
    "CancelFleetUpgrade",
    "DetectDrift",
    "GetDeploymentTemplate",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpgradeId {
    upgrade_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListUpgrades {
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// An upgrade as the API answers it; `with_targets` false for listings.
pub fn upgrade_json(
    upgrade: &crate::domain::upgrade::Upgrade,
    control: Option<&crate::domain::upgrade::Control>,
    with_targets: bool,
) -> Value {
    use crate::domain::upgrade::Progress;
    let waves: Vec<Value> = upgrade
        .waves
        .iter()
        .enumerate()
        .map(|(i, wave)| {
            let mut w = json!({
                "name": wave.name,
                "index": i,
                "approvedBy": control
                    .and_then(|c| c.approvals.iter().find(|a| a.wave == i))
                    .map(|a| compact(json!({ "principal": a.by.as_ref().map(|b| &b.principal_arn), "at": a.at }))),
            });
            if with_targets {
                w["counts"] = json!(Progress::of(&wave.targets));
                w["targets"] = json!(wave.targets);
            }
            compact(w)
        })
        .collect();
    compact(json!({
        "upgradeId": upgrade.id,
        "templateName": upgrade.template_name,
        "templateType": upgrade.template_type,
        "templateVersion": format!("{}.{}", upgrade.major, upgrade.minor),
        "status": upgrade.status.name(),
        "statusMessage": upgrade.status_message,
        "wave": upgrade.wave,
        "waves": waves,
        "counts": upgrade.counts,
        "settings": upgrade.settings,
        "paused": control.map(|c| c.paused),
        "cancelRequested": control.map(|c| c.cancel.is_some()),
        "startedBy": upgrade.started_by.as_ref().map(|b| &b.principal_arn),
        "createdAt": upgrade.created_at,
        "lastModifiedAt": upgrade.updated_at,
        "endedAt": upgrade.ended_at,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FleetRequest {
    template_name: ResourceName,
    template_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Rollback {
    deployment_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Confirm {
    resource_arn: String,
    confirmation: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetAccess {
    version: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListAccess {
    max_results: Option<u32>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutAccess {
    groups: Vec<crate::domain::access::Group>,
    policies: String,
    expected_version: u64,
}

fn access_json(access: &StoredAccess) -> Value {
    compact(json!({
        "version": access.version,
        "groups": access.document.groups,
        "policies": access.document.policies,
        "updatedBy": access.updated_by,
        "updatedAt": (access.version > 0).then_some(access.updated_at),
    }))
}

pub async fn dispatch(
    app: &App,
    caller: &Caller,
    operation: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    match operation {
        "GetAccessPolicy" => {
            let request: GetAccess = parse(body)?;
            let access = match request.version {
                Some(version) => app.access.version(version).await?,
                None => app.access.current().await?,
            };
            Ok(json!({ "accessPolicy": access_json(&access) }))
        }
        "ListAccessPolicyVersions" => {
            let request: ListAccess = parse(body)?;
            let before = match request.next_token.as_deref() {
                None => None,
                Some(token) => Some(token.parse::<u64>().map_err(|_| {
                    crate::app::Error::validation("nextToken: not a token this listing issued")
                })?),
            };
            let limit = request.max_results.unwrap_or(20);
            if !(1..=100).contains(&limit) {
                return Err(crate::app::Error::validation("maxResults: 1 to 100").into());
            }
            let versions = app.access.versions(before, limit).await?;
            let next = versions
                .last()
                .filter(|v| versions.len() == limit as usize && v.version > 0)
                .map(|v| v.version.to_string());
            Ok(compact(json!({
                "accessPolicies": versions.iter().map(access_json).collect::<Vec<_>>(),
                "nextToken": next,
            })))
        }
        "PutAccessPolicy" => {
            let request: PutAccess = parse(body)?;
            let document = AccessDocument {
                groups: request.groups,
                policies: request.policies,
            };
            let stored = app
                .access
                .put(caller, document, request.expected_version)
                .await?;
            Ok(json!({ "accessPolicy": access_json(&stored) }))
        }
        "GetImportPlan" => {
            let request: ImportRequest = parse(body)?;
            let plan = app.imports.plan(&request).await?;
            Ok(json!({ "items": plan.items }))
        }
        "ImportStacks" => {
            let request: ImportRequest = parse(body)?;
            let result = app.imports.apply(&request).await?;
            Ok(json!({ "items": result.items, "adopted": result.adopted }))
        }
        "ConfirmAdoption" => {
            let request: Confirm = parse(body)?;
            let code = app
                .imports
                .confirm(&request.resource_arn, &request.confirmation)
                .await?;
            Ok(json!({ "resourceArn": request.resource_arn, "confirmation": code }))
        }
        "GetTemplateFleet" => {
            let request: FleetRequest = parse(body)?;
            let kind = template_kind(&request.template_type)?;
            let fleet = app.fleet.view(kind, &request.template_name).await?;
            Ok(json!({
                "template": compact(json!({
                    "name": fleet.template.name,
                    "templateType": request.template_type,
                    "recommendedVersion": fleet.template.versions.recommended().map(|v| v.to_string()),
                })),
                "targets": fleet.targets,
            }))
        }
        "PreviewDeployment" => {
            let request: crate::app::fleet::PreviewRequest = parse(body)?;
            let (targets, summary) = app.fleet.preview(request).await?;
            Ok(json!({ "targets": targets, "summary": summary }))
        }
        "GetDeploymentTemplate" => {
            let request: Rollback = parse(body)?;
            let template = app.deployments.rendered(&request.deployment_id).await?;
            Ok(json!({ "deploymentId": request.deployment_id, "template": template }))
        }
        "DetectDrift" => {
            let request: FleetRequest = parse(body)?;
            let kind = template_kind(&request.template_type)?;
            let drifts = app.drift.detect(kind, &request.template_name).await?;
            Ok(json!({ "drifts": drifts }))
        }
        "StartFleetUpgrade" => {
            let request: crate::app::upgrades::UpgradeRequest = parse(body)?;
            let upgrade = app.upgrades.start(request).await?;
            Ok(json!({ "upgrade": upgrade_json(&upgrade, None, true) }))
        }
        "GetFleetUpgrade" => {
            let request: UpgradeId = parse(body)?;
            let (upgrade, control) = app.upgrades.get(&request.upgrade_id).await?;
            Ok(json!({ "upgrade": upgrade_json(&upgrade, Some(&control), true) }))
        }
        "ListFleetUpgrades" => {
            let request: ListUpgrades = parse(body)?;
            let page = super::wire::page(request.max_results, request.next_token)?;
            let listed = app.upgrades.list(page).await?;
            let items: Vec<Value> = listed
                .items
                .iter()
                .map(|u| upgrade_json(u, None, false))
                .collect();
            Ok(compact(json!({
                "upgrades": items,
                "nextToken": super::wire::next_token(listed.cursor),
            })))
        }
        "ApproveFleetUpgrade"
        | "PauseFleetUpgrade"
        | "ResumeFleetUpgrade"
        | "CancelFleetUpgrade" => {
            use crate::app::upgrades::Command;
            let request: UpgradeId = parse(body)?;
            let command = match operation {
                "ApproveFleetUpgrade" => Command::Approve,
                "PauseFleetUpgrade" => Command::Pause,
                "ResumeFleetUpgrade" => Command::Resume,
                _ => Command::Cancel,
            };
            let (upgrade, control) = app.upgrades.command(&request.upgrade_id, command).await?;
            Ok(json!({ "upgrade": upgrade_json(&upgrade, Some(&control), false) }))
        }
        "RollbackDeployment" => {
            let request: Rollback = parse(body)?;
            let id = app.fleet.rollback(&request.deployment_id).await?;
            Ok(json!({ "deploymentId": id, "rolledBackTo": request.deployment_id }))
        }
        "GetServicePipelineState" => {
            let request: StateRequest = parse(body)?;
            let limit = request.max_results.unwrap_or(10).clamp(1, 100);
            let view = app.pushes.state(&request.service_name, limit).await?;
            let redeploys = &view.service.redeploys;
            let mut state = compact(json!({
                "serviceName": view.service.name,
                "repositoryId": view.service.repository.id,
                "branchName": view.service.repository.branch,
                "pipelineName": view.pipeline.as_ref().and_then(|p| p.name.clone()),
                "pipelineStack": view.pipeline.as_ref().map(|p| p.stack.clone()),
                "redeploys": compact(json!({
                    "running": redeploys.running.as_ref().map(redeploy_json),
                    "pending": redeploys.pending.as_ref().map(|p| json!({
                        "commitId": p.commit_id, "source": p.source, "receivedAt": p.received_at,
                    })),
                    "last": redeploys.last.as_ref().map(redeploy_json),
                    "coalesced": redeploys.coalesced,
                })),
            }));
            if let Value::Object(map) = &mut state {
                match &view.executions {
                    Ok(executions) => {
                        let items: Vec<Value> = executions
                            .iter()
                            .map(|e| {
                                compact(json!({
                                    "pipelineExecutionId": e.id,
                                    "status": e.status,
                                    "statusSummary": e.status_summary,
                                    "startTime": e.started_at,
                                    "lastUpdateTime": e.updated_at,
                                    "sourceRevisions": e.revisions,
                                }))
                            })
                            .collect();
                        map.insert("executions".into(), json!(items));
                    }
                    Err(reason) => {
                        map.insert("executionsUnavailable".into(), json!(reason));
                    }
                }
                match &view.stages {
                    Ok(stages) => {
                        let items: Vec<Value> = stages
                            .iter()
                            .map(|s| {
                                compact(json!({
                                    "stageName": s.name,
                                    "status": s.status,
                                    "pipelineExecutionId": s.execution_id,
                                }))
                            })
                            .collect();
                        map.insert("stages".into(), json!(items));
                    }
                    Err(reason) => {
                        map.insert("stagesUnavailable".into(), json!(reason));
                    }
                }
            }
            Ok(json!({ "pipelineState": state }))
        }
        _ => Err(ApiError::UnknownOperation),
    }
}

fn template_kind(name: &str) -> Result<crate::domain::template::TemplateKind, ApiError> {
    crate::domain::template::TemplateKind::from_type_name(name)
        .map_err(|reason| crate::app::Error::Validation(reason).into())
}

fn redeploy_json(run: &Redeploy) -> Value {
    compact(json!({
        "commitId": run.push.commit_id,
        "source": run.push.source,
        "receivedAt": run.push.received_at,
        "execution": run.execution,
        "pipelineExecutionId": run.pipeline_execution_id,
        "status": run.status,
        "statusMessage": run.status_message,
        "startedAt": run.started_at,
        "endedAt": run.ended_at,
    }))
}
