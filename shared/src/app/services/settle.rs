//! How a service moves on after one of its deployments ended.

use crate::app::deploy::Deployer;
use crate::app::{Error, Result};
use crate::domain::environment::{DeploymentStatus, Target};
use crate::domain::names::{ResourceName, Timestamp};
use crate::domain::service::{Service, ServiceStatus};
use crate::ports::{DeploymentChange, DeploymentWrite, ServiceWrite, StoreError, Workflow};

use super::pipeline_redeployment;

/// Moves a service on after one of its deployments ended. Each step is decided from what is
/// stored, so when two deployments end at once and both try, the one that loses the write
/// reads again and finds the work done (or the next step to take).
pub async fn settle(d: &Deployer, name: &ResourceName) -> Result<()> {
    // The status the first step found, to announce the change the steps made.
    let mut before = None;
    let mut attempts = 0;
    let settled = loop {
        match settle_once(d, name, &mut before).await {
            // A deployment it launched could not start (and was recorded as failed): once more.
            Ok(true) if attempts < 5 => attempts += 1,
            Ok(_) => break Ok(()),
            Err(Error::Store(StoreError::ConditionFailed)) if attempts < 5 => attempts += 1,
            Err(other) => break Err(other),
        }
    };
    // The status it moved to, on the bus (a service that is gone was deleted: no status).
    if let Ok(Some(after)) = d.store.service(name).await
        && Some(after.status) != before
    {
        d.announce_service(&after, before).await;
    }
    settled
}
/// One step of `settle`; `true` if the step should be taken again.
async fn settle_once(
    d: &Deployer,
    name: &ResourceName,
    first_seen: &mut Option<ServiceStatus>,
) -> Result<bool> {
    let Some(service) = d.store.service(name).await? else {
        return Ok(false);
    };
    first_seen.get_or_insert(service.status);
    if service.status == ServiceStatus::DeleteInProgress {
        return settle_deletion(d, service).await.map(|()| false);
    }
    if service.status == ServiceStatus::UpdateInProgress {
        return settle_update(d, service).await;
    }
    if service.status != ServiceStatus::CreateInProgress {
        return Ok(false);
    }
    let instances = d.store.instances(name).await?;
    let failed = instances.iter().find(|i| {
        matches!(
            i.deployed.deployment_status,
            DeploymentStatus::Failed | DeploymentStatus::Cancelled
        )
    });
    let mut next = service.clone();
    let mut change = DeploymentChange::default();
    let mut start = None;
    if let Some(instance) = failed {
        next.status = ServiceStatus::CreateFailed;
        next.status_message = Some(format!(
            "instance {} failed: {}",
            instance.name,
            instance
                .deployed
                .deployment_status_message
                .as_deref()
                .unwrap_or("no reason recorded")
        ));
    } else if instances
        .iter()
        .any(|i| i.deployed.deployment_status != DeploymentStatus::Succeeded)
    {
        return Ok(false);
    } else {
        match &service.pipeline {
            None => next.status = ServiceStatus::Active,
            Some(pipeline) if pipeline.last_attempted_deployment_id.is_none() => {
                let environment = instances
                    .first()
                    .map(|i| i.environment.clone())
                    .unwrap_or_else(|| name.clone());
                let (started, record) =
                    pipeline_redeployment(&service, pipeline, environment, Timestamp::now());
                next.pipeline = Some(started);
                start = Some(record.id.clone());
                change.deployments.push(DeploymentWrite::Create(record));
            }
            Some(pipeline) => match pipeline.deployment_status {
                DeploymentStatus::Succeeded => next.status = ServiceStatus::Active,
                DeploymentStatus::Failed | DeploymentStatus::Cancelled => {
                    next.status = ServiceStatus::CreateFailed;
                    next.status_message = Some(format!(
                        "the pipeline failed: {}",
                        pipeline
                            .deployment_status_message
                            .as_deref()
                            .unwrap_or("no reason recorded")
                    ));
                }
                _ => return Ok(false),
            },
        }
    }
    next.last_modified_at = Timestamp::now();
    next.rev = service.rev + 1;
    change.services.push(ServiceWrite::Replace {
        service: next,
        expected_rev: service.rev,
    });
    d.store.change(change).await?;
    if let Some(id) = start {
        return Ok(!d.launch(Workflow::Deploy, &id).await.started());
    }
    Ok(false)
}
/// A service being deleted goes once its instances and pipeline are gone, or becomes
/// DELETE_FAILED with the reason of the first that could not be deleted.
async fn settle_deletion(d: &Deployer, service: Service) -> Result<()> {
    let instances = d.store.instances(&service.name).await?;
    let failed_instance = instances
        .iter()
        .find(|i| i.deployed.deployment_status == DeploymentStatus::DeleteFailed);
    let pipeline_failed = service
        .pipeline
        .as_ref()
        .filter(|p| p.deployment_status == DeploymentStatus::DeleteFailed);
    let reason = match (failed_instance, pipeline_failed) {
        (Some(instance), _) => Some(format!(
            "instance {} could not be deleted: {}",
            instance.name,
            instance
                .deployed
                .deployment_status_message
                .as_deref()
                .unwrap_or("no reason recorded")
        )),
        (None, Some(pipeline)) => Some(format!(
            "the pipeline could not be deleted: {}",
            pipeline
                .deployment_status_message
                .as_deref()
                .unwrap_or("no reason recorded")
        )),
        (None, None) => None,
    };
    let pipeline_gone = service
        .pipeline
        .as_ref()
        .is_none_or(|p| p.deployment_status == DeploymentStatus::DeleteComplete);
    let change = match reason {
        Some(reason) => {
            let mut next = service.clone();
            next.status = ServiceStatus::DeleteFailed;
            next.status_message = Some(reason);
            next.last_modified_at = Timestamp::now();
            next.rev = service.rev + 1;
            DeploymentChange {
                services: vec![ServiceWrite::Replace {
                    service: next,
                    expected_rev: service.rev,
                }],
                ..Default::default()
            }
        }
        None if instances.is_empty() && pipeline_gone => DeploymentChange {
            services: vec![ServiceWrite::Delete {
                name: service.name.clone(),
                expected_rev: service.rev,
            }],
            ..Default::default()
        },
        None => return Ok(()),
    };
    d.store.change(change).await?;
    Ok(())
}
/// A service being updated is ACTIVE again once the deployments it waits for have ended and
/// its pipeline has been redeployed for the new list of instances; UPDATE_FAILED with the
/// reason of the first that failed.
async fn settle_update(d: &Deployer, service: Service) -> Result<bool> {
    let mut failures = Vec::new();
    for id in &service.awaiting {
        let Some(deployment) = d.store.deployment(id).await? else {
            continue;
        };
        if deployment.status.is_active() {
            return Ok(false);
        }
        if matches!(
            deployment.status,
            DeploymentStatus::Failed | DeploymentStatus::Cancelled | DeploymentStatus::DeleteFailed
        ) {
            let what = match &deployment.target {
                Target::ServiceInstance { instance, .. } => format!("instance {instance}"),
                Target::ServicePipeline { .. } => "the pipeline".to_string(),
                other => other.resource_type().to_lowercase(),
            };
            failures.push(format!(
                "{what}: {}",
                deployment
                    .status_message
                    .as_deref()
                    .unwrap_or("no reason recorded")
            ));
        }
    }
    let now = Timestamp::now();
    let mut next = service.clone();
    next.rev = service.rev + 1;
    next.last_modified_at = now;
    next.awaiting = vec![];
    let mut change = DeploymentChange::default();
    let mut start = None;
    let pipeline_phase = match &service.pipeline {
        Some(pipeline) => {
            service.awaiting.len() == 1
                && pipeline.last_attempted_deployment_id.as_ref() == service.awaiting.first()
        }
        None => false,
    };
    match &service.pipeline {
        _ if !failures.is_empty() => {
            next.status = ServiceStatus::UpdateFailed;
            next.status_message = Some(failures.join("; "));
        }
        Some(pipeline)
            if !pipeline_phase
                && pipeline.last_attempted_deployment_id.is_some()
                && pipeline.deployment_status != DeploymentStatus::DeleteComplete =>
        {
            let instances = d.store.instances(&service.name).await?;
            let environment = instances
                .first()
                .map(|i| i.environment.clone())
                .unwrap_or_else(|| service.name.clone());
            let (started, record) = pipeline_redeployment(&service, pipeline, environment, now);
            next.pipeline = Some(started);
            next.awaiting = vec![record.id.clone()];
            start = Some(record.id.clone());
            change.deployments.push(DeploymentWrite::Create(record));
        }
        _ => {
            next.status = ServiceStatus::Active;
            next.status_message = None;
        }
    }
    change.services.push(ServiceWrite::Replace {
        service: next,
        expected_rev: service.rev,
    });
    d.store.change(change).await?;
    if let Some(id) = start {
        return Ok(!d.launch(Workflow::Deploy, &id).await.started());
    }
    Ok(false)
}
