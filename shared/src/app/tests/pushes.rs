//! Pushes and redeploys.

use super::*;
use crate::app::pushes::Pushes;
use crate::app::services::NewService;
use crate::domain::push::{Push, PushSource, RunStatus};
use crate::domain::service::ServiceStatus;

const PIPELINED: &str = "Resources:\n  Pipeline:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      Name: '{{ service.name }}-pipeline'\n";

/// A deployed service `api` tracking `acme/api@main`, whose pipeline stack holds a
/// CodePipeline the scripted CodePipeline knows.
async fn service_with_pipeline(w: &World) -> Pushes {
    w.create("dev", SPEC).await.unwrap();
    w.run_deploy(&w.last_started()).await;
    let services = super::components_and_services::world_with_pipeline(w, PIPELINED).await;
    let before = w.started_count();
    services
        .create(NewService {
            tags: Default::default(),
            name: name("api"),
            template_name: name("web"),
            template_major_version: VersionPart(1),
            template_minor_version: None,
            spec:
                "proton: ServiceSpec\npipeline: {}\ninstances:\n  - {name: a, environment: dev}\n"
                    .into(),
            description: None,
            repository_connection_arn: Some(
                crate::domain::names::Arn::parse(
                    "arn:aws:codestar-connections:us-east-1:123456789012:connection/x",
                )
                .unwrap(),
            ),
            repository_id: Some(crate::domain::names::RepositoryId::parse("acme/api").unwrap()),
            branch_name: Some(crate::domain::names::BranchName::parse("main").unwrap()),
        })
        .await
        .unwrap();
    for (_, id) in w.started_since(before) {
        w.run_deploy(&id).await;
    }
    w.run_deploy(&w.last_started()).await;
    assert_eq!(
        services.get(&name("api")).await.unwrap().status,
        ServiceStatus::Active
    );
    w.pipelines
        .pipelines
        .lock()
        .unwrap()
        .push("paved-pipeline-api-Pipeline".into());
    Pushes::new(w.deployer.clone())
}

fn push(repository: &str, branch: &str, commit: char) -> Push {
    Push {
        repository_id: repository.into(),
        branch: branch.into(),
        commit_id: commit.to_string().repeat(40),
        source: PushSource::Paved,
    }
}

/// Runs a redeploy execution's steps as `statemachines/redeploy.asl.json` orders them.
async fn run_redeploy(w: &World, execution: &str) -> serde_json::Value {
    let mut state = w.workflows.inputs.lock().unwrap()[execution].clone();
    let step = |task: &str, state: &serde_json::Value| {
        let mut payload = state.clone();
        payload["task"] = json!(task);
        payload
    };
    let started = w.engine.run(step("startPipeline", &state)).await;
    let run = match started {
        Ok(run) => run,
        Err(error) => {
            state["error"] = json!({"Error": error.name(), "Cause": json!({"errorMessage": error.to_string()}).to_string()});
            w.engine.run(step("failRedeploy", &state)).await.unwrap();
            return json!({"failed": error.to_string()});
        }
    };
    if run["started"] != true {
        return run;
    }
    state["pipelineExecutionId"] = run["pipelineExecutionId"].clone();
    loop {
        let checked = w.engine.run(step("checkPipeline", &state)).await.unwrap();
        if checked["done"] == true {
            state["status"] = checked["status"].clone();
            w.engine.run(step("finishRedeploy", &state)).await.unwrap();
            return checked;
        }
    }
}

/// Starts a push's redeploy and leaves it running (its pipeline started, not followed);
/// returns its execution and the input its last step (finishRedeploy, Succeeded) takes.
async fn start_running(
    w: &World,
    pushes: &Pushes,
    commit: char,
    event: &str,
) -> (String, serde_json::Value) {
    let started = pushes
        .receive(&push("acme/api", "main", commit), event)
        .await
        .unwrap();
    let mut state = w.workflows.inputs.lock().unwrap()[&started[0]].clone();
    state["task"] = json!("startPipeline");
    let run = w.engine.run(state.clone()).await.unwrap();
    assert_eq!(run["started"], true);
    state["pipelineExecutionId"] = run["pipelineExecutionId"].clone();
    state["status"] = json!("Succeeded");
    state["task"] = json!("finishRedeploy");
    (started[0].clone(), state)
}

#[tokio::test]
async fn a_push_starts_the_pipeline_of_the_services_on_its_branch_only() {
    let w = World::new().await;
    let pushes = service_with_pipeline(&w).await;
    for other in [
        push("acme/api", "develop", 'b'),
        push("acme/other", "main", 'b'),
    ] {
        assert!(pushes.receive(&other, "event-1").await.unwrap().is_empty());
    }
    let started = pushes
        .receive(&push("acme/api", "main", 'a'), "event-2")
        .await
        .unwrap();
    assert_eq!(started.len(), 1);
    assert!(started[0].starts_with("push-aaaaaaaaaaaa-"), "{started:?}");
    let input = w.workflows.inputs.lock().unwrap()[&started[0]].clone();
    assert_eq!(input["push"]["commitId"], "a".repeat(40));
    // EventBridge may deliver an event twice: the same event starts nothing new.
    assert_eq!(
        pushes
            .receive(&push("acme/api", "main", 'a'), "event-2")
            .await
            .unwrap(),
        started
    );
    let ended = run_redeploy(&w, &started[0]).await;
    assert_eq!(ended["status"], "Succeeded");
    let starts = w.pipelines.started.lock().unwrap().clone();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(
        starts[0].1, started[0],
        "the execution name is the request token"
    );
    let view = pushes.state(&name("api"), 10).await.unwrap();
    let last = view.service.redeploys.last.unwrap();
    assert_eq!(
        (last.status, last.push.commit_id.as_str()),
        (RunStatus::Succeeded, "a".repeat(40).as_str())
    );
    assert_eq!(
        last.pipeline_execution_id.as_deref(),
        Some(starts[0].2.as_str())
    );
}

#[tokio::test]
async fn a_burst_of_pushes_coalesces_into_one_more_run_for_the_newest_commit() {
    let w = World::new().await;
    let pushes = service_with_pipeline(&w).await;
    // The first run has started its pipeline and is being followed...
    let (_, finished) = start_running(&w, &pushes, 'a', "e1").await;
    // ...when three more pushes arrive.
    let mut queued = Vec::new();
    for (commit, event) in [('b', "e2"), ('c', "e3"), ('d', "e4")] {
        let execution = pushes
            .receive(&push("acme/api", "main", commit), event)
            .await
            .unwrap();
        let outcome = run_redeploy(&w, &execution[0]).await;
        assert_eq!(outcome["queued"], true, "{outcome}");
        queued.push(execution[0].clone());
    }
    let view = pushes.state(&name("api"), 10).await.unwrap();
    assert_eq!(
        view.service.redeploys.pending.as_ref().unwrap().commit_id,
        "d".repeat(40)
    );
    assert_eq!(view.service.redeploys.coalesced, 2, "b and c were replaced");
    assert_eq!(
        w.pipelines.started.lock().unwrap().len(),
        1,
        "no overlapping runs"
    );
    // The first run ends: one more starts, for d.
    let before = w.started_count();
    w.engine.run(finished).await.unwrap();
    let follow_up = w.started_since(before);
    assert_eq!(follow_up.len(), 1);
    assert_eq!(follow_up[0].0, Workflow::Redeploy);
    let ended = run_redeploy(&w, &follow_up[0].1).await;
    assert_eq!(ended["status"], "Succeeded");
    let view = pushes.state(&name("api"), 10).await.unwrap();
    assert_eq!(
        view.service.redeploys.last.unwrap().push.commit_id,
        "d".repeat(40)
    );
    assert!(view.service.redeploys.pending.is_none() && view.service.redeploys.running.is_none());
    assert_eq!(w.pipelines.started.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_pipeline_is_recorded_and_stage_states_are_read() {
    let w = World::new().await;
    let pushes = service_with_pipeline(&w).await;
    w.pipelines
        .status_script
        .lock()
        .unwrap()
        .extend(["InProgress".to_string(), "Failed".to_string()]);
    w.pipelines
        .stage_states
        .lock()
        .unwrap()
        .push(crate::ports::StageState {
            name: "Build".into(),
            status: Some("Failed".into()),
            execution_id: Some("exec-1".into()),
        });
    let started = pushes
        .receive(&push("acme/api", "main", 'a'), "e1")
        .await
        .unwrap();
    let ended = run_redeploy(&w, &started[0]).await;
    assert_eq!(ended["status"], "Failed");
    let view = pushes.state(&name("api"), 10).await.unwrap();
    let last = view.service.redeploys.last.unwrap();
    assert_eq!(last.status, RunStatus::Failed);
    assert_eq!(
        last.status_message.as_deref(),
        Some("the pipeline execution ended Failed")
    );
    let stages = view.stages.unwrap();
    assert_eq!(
        (stages[0].name.as_str(), stages[0].status.as_deref()),
        ("Build", Some("Failed"))
    );
    // A pipeline CodePipeline does not know fails the redeploy with the reason, not silently.
    w.pipelines.pipelines.lock().unwrap().clear();
    let started = pushes
        .receive(&push("acme/api", "main", 'b'), "e2")
        .await
        .unwrap();
    let outcome = run_redeploy(&w, &started[0]).await;
    assert!(
        outcome["failed"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{outcome}"
    );
    let last = pushes
        .state(&name("api"), 10)
        .await
        .unwrap()
        .service
        .redeploys
        .last
        .unwrap();
    assert_eq!(last.status, RunStatus::Failed);
    assert!(last.status_message.unwrap().contains("does not exist"));
}

#[tokio::test]
async fn a_redeploy_whose_execution_died_does_not_hold_back_the_next_push() {
    let w = World::new().await;
    let pushes = service_with_pipeline(&w).await;
    let (first, _) = start_running(&w, &pushes, 'a', "e1").await;
    // The execution times out before it records anything.
    w.workflows
        .states
        .lock()
        .unwrap()
        .insert(first, ExecutionState::Ended);
    let second = pushes
        .receive(&push("acme/api", "main", 'b'), "e2")
        .await
        .unwrap();
    let outcome = run_redeploy(&w, &second[0]).await;
    assert_eq!(outcome["status"], "Succeeded", "{outcome}");
    let redeploys = pushes
        .state(&name("api"), 10)
        .await
        .unwrap()
        .service
        .redeploys;
    assert_eq!(redeploys.last.unwrap().push.commit_id, "b".repeat(40));
    assert!(redeploys.running.is_none());
}

#[tokio::test]
async fn a_pending_push_survives_a_failed_start_of_its_redeploy() {
    let w = World::new().await;
    let pushes = service_with_pipeline(&w).await;
    let (_, finished) = start_running(&w, &pushes, 'a', "e1").await;
    let second = pushes
        .receive(&push("acme/api", "main", 'b'), "e2")
        .await
        .unwrap();
    assert_eq!(run_redeploy(&w, &second[0]).await["queued"], true);
    // Starting the pending push's redeploy fails once; the step is retried.
    w.workflows.refuse_starts.store(true, Ordering::SeqCst);
    assert!(w.engine.run(finished.clone()).await.is_err());
    w.workflows.refuse_starts.store(false, Ordering::SeqCst);
    let before = w.started_count();
    w.engine.run(finished).await.unwrap();
    let follow_up = w.started_since(before);
    assert_eq!(follow_up.len(), 1, "the pending push is not lost");
    assert_eq!(
        run_redeploy(&w, &follow_up[0].1).await["status"],
        "Succeeded"
    );
    let last = pushes
        .state(&name("api"), 10)
        .await
        .unwrap()
        .service
        .redeploys
        .last;
    assert_eq!(last.unwrap().push.commit_id, "b".repeat(40));
}
