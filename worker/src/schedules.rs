//! `certpool schedules apply|list`: the expiry scan as a Temporal Schedule.

use anyhow::{Context, Result};
use certpool_domain::config::LoadedConfig;
use certpool_domain::contracts::{ScanInput, workflow_ids::EXPIRY_SCAN_SCHEDULE};
use certpool_workflows::ExpiryScan;
use futures::StreamExt;
use std::time::SystemTime;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ListSchedulesOptions, ScheduleAction, ScheduleOverlapPolicy, ScheduleSpec,
};

fn spec(cfg: &LoadedConfig) -> ScheduleSpec {
    let mut spec = ScheduleSpec::from_interval(cfg.config.scan.interval.get());
    if !cfg.config.scan.jitter.get().is_zero() {
        spec.jitter = Some(cfg.config.scan.jitter.get());
    }
    spec
}

fn action(cfg: &LoadedConfig) -> ScheduleAction {
    ScheduleAction::start_workflow(
        ExpiryScan::run,
        ScanInput::default(),
        cfg.config.temporal.task_queue.clone(),
        "expiry-scan",
    )
}

/// Creates the schedule, or updates interval, jitter and action of the existing one.
/// Returns `true` when it was created.
pub async fn apply(client: &Client, cfg: &LoadedConfig) -> Result<bool> {
    let created = client
        .create_schedule(
            EXPIRY_SCAN_SCHEDULE,
            CreateScheduleOptions::builder()
                .action(action(cfg))
                .spec(spec(cfg))
                // A scan still running when the next is due makes the next one pointless.
                .overlap_policy(ScheduleOverlapPolicy::Skip)
                .note("certpool expiry scan (certpool schedules apply)".to_owned())
                .build(),
        )
        .await;
    match created {
        Ok(_) => Ok(true),
        Err(e) if e.to_string().to_ascii_lowercase().contains("already") => {
            let (s, a) = (spec(cfg), action(cfg));
            client
                .get_schedule_handle(EXPIRY_SCAN_SCHEDULE)
                .update(
                    move |u| {
                        u.set_spec(s).set_action(a);
                    },
                    Default::default(),
                )
                .await
                .context("updating the expiry-scan schedule")?;
            Ok(false)
        }
        Err(e) => Err(e).context("creating the expiry-scan schedule"),
    }
}

/// One row of `schedules list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleRow {
    /// Schedule id.
    pub id: String,
    /// Workflow type it starts.
    pub workflow_type: String,
    /// Next run times, RFC 3339.
    pub next_runs: Vec<String>,
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Lists schedules with their next runs.
pub async fn list(client: &Client) -> Result<Vec<ScheduleRow>> {
    let mut rows = Vec::new();
    let mut stream = client.list_schedules(ListSchedulesOptions::default());
    while let Some(entry) = stream.next().await {
        let entry = entry.context("listing schedules")?;
        let id = entry.schedule_id().to_owned();
        let desc = client
            .get_schedule_handle(id.clone())
            .describe(Default::default())
            .await
            .with_context(|| format!("describing schedule {id}"))?;
        rows.push(ScheduleRow {
            workflow_type: entry.workflow_type().unwrap_or("-").to_owned(),
            next_runs: desc
                .future_action_times()
                .into_iter()
                .take(3)
                .map(|t| certpool_domain::time::rfc3339(secs(t)))
                .collect(),
            id,
        });
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}
