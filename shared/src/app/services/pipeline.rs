//! The pipeline of a service: UpdateServicePipeline and its cancel.

use serde::Deserialize;

use crate::app::deploy::records::{deployment, new_id, redeployment_of};
use crate::app::deploy::{Loaded, request_cancel};
use crate::app::{Error, Result};
use crate::domain::environment::{Deployed, Deployment, DeploymentStatus, DeploymentType, Target};
use crate::domain::names::{ResourceName, Timestamp, VersionPart};
use crate::domain::schema::InputRole;
use crate::domain::service::Service;
use crate::domain::spec::Spec;
use crate::ports::{DeploymentChange, DeploymentWrite, ServiceWrite, Workflow};

use super::{Redeploy, Services, conflict_if_busy};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineUpdate {
    pub service_name: ResourceName,
    pub deployment_type: DeploymentType,
    pub spec: String,
    pub template_major_version: Option<VersionPart>,
    pub template_minor_version: Option<VersionPart>,
}

/// A deployment of the pipeline as it is now (its template reads the current instances), and
/// the pipeline marked as running it. The record names the environment of the first instance.
pub(super) fn pipeline_redeployment(
    service: &Service,
    pipeline: &Deployed,
    environment: ResourceName,
    now: Timestamp,
) -> (Deployed, Deployment) {
    let id = new_id();
    let target = Target::ServicePipeline {
        service: service.name.clone(),
    };
    let record = if pipeline.last_succeeded_deployment_id.is_some() {
        let state = pipeline.state.clone();
        let created = service.created_at;
        redeployment_of(&id, &environment, target, pipeline, state, created, now)
    } else {
        deployment(
            &id,
            &environment,
            target,
            pipeline.state.clone(),
            service.created_at,
            now,
        )
    };
    let mut started = pipeline.clone();
    started.begin(&id, DeploymentStatus::InProgress, now);
    (started, record)
}

impl Services {
    /// Redeploys the service's pipeline with a new spec (its `pipeline` inputs) or version.
    #[tracing::instrument(skip_all, fields(service = %update.service_name))]
    pub async fn update_pipeline(&self, update: PipelineUpdate) -> Result<Service> {
        let d = &self.d;
        let service = self.get(&update.service_name).await?;
        let pipeline = pipeline_of(&service)?;
        conflict_if_busy(&service)?;
        if pipeline.deployment_status.is_active() {
            return Err(Error::conflict(format!(
                "the pipeline of service {} has a deployment in progress; wait for it or cancel it",
                service.name
            )));
        }
        let Spec::Service {
            pipeline: inputs, ..
        } = Spec::parse(&update.spec).map_err(Error::Validation)?
        else {
            return Err(Error::validation(
                "spec: a service pipeline takes `proton: ServiceSpec`",
            ));
        };
        if update.deployment_type == DeploymentType::None {
            return Ok(service);
        }
        let Redeploy { state, usage } = self
            .redeploy(
                &service,
                &pipeline.state,
                update.deployment_type,
                update.template_major_version,
                update.template_minor_version,
                Some((update.spec.clone(), inputs.unwrap_or_default())),
                InputRole::Pipeline,
                "spec.pipeline",
            )
            .await?;
        let instances = d.store.instances(&service.name).await?;
        let environment = instances
            .first()
            .map(|i| i.environment.clone())
            .unwrap_or_else(|| service.name.clone());
        let mut with_state = pipeline.clone();
        with_state.state = state.clone();
        let (begun, mut record) =
            pipeline_redeployment(&service, &with_state, environment, Timestamp::now());
        record.initial_state = Some(pipeline.state.clone());
        let mut next = service.clone();
        next.pipeline = Some(begun.clone());
        next.rev = service.rev + 1;
        Loaded::Pipeline {
            service: next.clone(),
            pipeline: begun.clone(),
        }
        .render(d, &record)
        .await?;
        let id = record.id.clone();
        let change = DeploymentChange {
            services: vec![ServiceWrite::Replace {
                service: next.clone(),
                expected_rev: service.rev,
            }],
            deployments: vec![DeploymentWrite::Create(record)],
            usage,
            ..Default::default()
        };
        d.write(change, || {
            format!(
                "service {} changed while this update was prepared; retry",
                service.name
            )
        })
        .await?;
        if !d.launch(Workflow::Deploy, &id).await.started() {
            return self.get(&update.service_name).await;
        }
        Ok(next)
    }

    /// Asks a running pipeline deployment to stop.
    pub async fn cancel_pipeline(&self, service: &ResourceName) -> Result<Service> {
        let loaded = self.get(service).await?;
        let target = Loaded::Pipeline {
            pipeline: pipeline_of(&loaded)?,
            service: loaded,
        };
        match request_cancel(
            &self.d,
            target,
            &format!("the pipeline of service {service}"),
        )
        .await?
        {
            Loaded::Pipeline { service, pipeline } => Ok(Service {
                pipeline: Some(pipeline),
                ..service
            }),
            _ => unreachable!("request_cancel returns the target it was given"),
        }
    }
}

pub fn pipeline_of(service: &Service) -> Result<Deployed> {
    service.pipeline.clone().ok_or_else(|| {
        Error::validation(format!(
            "service {} has no pipeline that paved provisions",
            service.name
        ))
    })
}
