//! Temporal cost and per-activity timings, read from the real histories of the bench's runs.

use crate::stats::{mean, write_json};
use crate::tctl::{Temporal, event_type, parse_time, payload_bytes};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Frontend address (host:port or http://host:port).
    #[arg(long)]
    address: String,
    /// The `temporal` CLI.
    #[arg(long)]
    temporal_cli: PathBuf,
    /// The pool the certpool fill contender filled.
    #[arg(long)]
    fill_pool: String,
    /// Claims to read, as `label=cluster-prefix` (repeat): one group per claims run.
    #[arg(long = "claims")]
    claims: Vec<String>,
    /// At most this many claims' histories are read.
    #[arg(long, default_value_t = 50)]
    claim_sample: usize,
    /// Where the JSON result goes.
    #[arg(long)]
    out: PathBuf,
}

/// Counts over a set of workflow runs.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Cost {
    pub runs: usize,
    pub events: usize,
    pub payload_bytes: u64,
}

impl Cost {
    fn add(&mut self, h: &[Value]) {
        self.runs += 1;
        self.events += h.len();
        self.payload_bytes += h.iter().map(payload_bytes).sum::<u64>();
    }
}

/// Per activity type: how long tasks waited for a worker and how long they ran.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Timing {
    pub count: usize,
    pub attempts_over_one: usize,
    pub mean_queue_ms: f64,
    pub mean_run_ms: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct HistoryReport {
    /// Issued certificates the fill's histories cover.
    pub issued: usize,
    pub issue_certificate: Cost,
    pub pool_replenish: Cost,
    pub renewals: usize,
    pub certificate_renewal: Cost,
    /// Child IssueCertificate runs of the renewals.
    pub renewal_issues: Cost,
    /// Per claims group (label from `--claims`).
    pub claims: BTreeMap<String, ClaimPath>,
    /// Activity type -> timing, over the fill's IssueCertificate runs.
    pub activities: BTreeMap<String, Timing>,
    /// Local activities (marker events) per IssueCertificate run.
    pub local_activities_per_issue: f64,
    /// Mean time a workflow task of IssueCertificate waited to be picked up, and ran, ms.
    pub issue_wft_queue_ms: f64,
    pub issue_wft_run_ms: f64,
    pub issue_wft_per_run: f64,
    /// Mean IssueCertificate duration, ms.
    pub issue_duration_ms: f64,
}

/// The claim path of one group of claims, from the `PoolClaims` histories that answered them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ClaimPath {
    /// Claims of the group found in the histories.
    pub claims: usize,
    /// The history events and payloads of the workflow tasks that answered them (`runs` counts
    /// those workflow tasks).
    pub pool_claims: Cost,
    pub cluster_sync: Cost,
    /// Workflow task scheduled to claim update completed, ms (the server's part of a claim).
    pub task_to_update_ms: f64,
    pub wft_queue_ms: f64,
    pub wft_run_ms: f64,
    /// Claims answered per workflow task.
    pub claims_per_wft: f64,
}

/// Splits each `PoolClaims` history into its workflow tasks (scheduled up to the next scheduled)
/// and keeps those that answered claims of clusters named `<prefix>…`.
fn claim_path(t: &Temporal, desks: &[Vec<Value>], prefix: &str, sync_sample: usize) -> Result<ClaimPath> {
    let mut c = ClaimPath::default();
    let (mut queue, mut run, mut to_update) = (Vec::new(), Vec::new(), Vec::new());
    let mut clusters = Vec::new();
    for h in desks {
        let starts: Vec<usize> = h
            .iter()
            .enumerate()
            .filter(|(_, e)| event_type(e) == "WorkflowTaskScheduled")
            .map(|(i, _)| i)
            .collect();
        for (k, &from) in starts.iter().enumerate() {
            let seg = &h[from..starts.get(k + 1).copied().unwrap_or(h.len())];
            let ours: Vec<String> = seg
                .iter()
                .filter(|e| event_type(e) == "WorkflowExecutionUpdateAccepted")
                .filter_map(|e| {
                    attr(e, "workflowExecutionUpdateAcceptedEventAttributes")["acceptedRequest"]["meta"]["updateId"]
                        .as_str()
                        .map(str::to_owned)
                })
                .filter(|id| id.starts_with(prefix))
                .collect();
            if ours.is_empty() {
                continue;
            }
            c.claims += ours.len();
            c.pool_claims.runs += 1;
            c.pool_claims.events += seg.len();
            c.pool_claims.payload_bytes += seg.iter().map(payload_bytes).sum::<u64>();
            let find = |ty: &str| seg.iter().find(|e| event_type(e) == ty);
            if let (Some(s), Some(st), Some(done)) = (
                find("WorkflowTaskScheduled"),
                find("WorkflowTaskStarted"),
                find("WorkflowTaskCompleted"),
            ) {
                queue.extend(ms_between(s, st));
                run.extend(ms_between(st, done));
            }
            for e in seg
                .iter()
                .filter(|e| event_type(e) == "WorkflowExecutionUpdateCompleted")
            {
                to_update.extend(ms_between(&seg[0], e));
            }
            clusters.extend(
                ours.iter()
                    .filter_map(|id| id.split_once('/').map(|(c, _)| c.to_owned())),
            );
        }
    }
    for cluster in clusters.iter().take(sync_sample) {
        if let Ok(sync) = t.history(&format!("cluster-sync/{cluster}"), "") {
            c.cluster_sync.add(&sync);
        }
    }
    c.task_to_update_ms = mean(&to_update).unwrap_or(0.0);
    c.wft_queue_ms = mean(&queue).unwrap_or(0.0);
    c.wft_run_ms = mean(&run).unwrap_or(0.0);
    #[allow(clippy::cast_precision_loss)]
    {
        c.claims_per_wft = c.claims as f64 / c.pool_claims.runs.max(1) as f64;
    }
    Ok(c)
}

fn attr<'a>(e: &'a Value, name: &str) -> &'a Value {
    &e[name]
}

fn children(h: &[Value]) -> Vec<(String, String)> {
    h.iter()
        .filter(|e| event_type(e) == "ChildWorkflowExecutionStarted")
        .map(|e| {
            let x = &attr(e, "childWorkflowExecutionStartedEventAttributes")["workflowExecution"];
            (
                x["workflowId"].as_str().unwrap_or_default().to_owned(),
                x["runId"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn ms_between(a: &Value, b: &Value) -> Option<f64> {
    Some((parse_time(&b["eventTime"])? - parse_time(&a["eventTime"])?).as_seconds_f64() * 1e3)
}

fn id_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Default)]
struct WftAcc {
    queue: Vec<f64>,
    run: Vec<f64>,
    runs: usize,
}

impl WftAcc {
    fn add(&mut self, h: &[Value]) {
        self.runs += 1;
        let mut scheduled: Option<&Value> = None;
        let mut started: Option<&Value> = None;
        for e in h {
            match event_type(e).as_str() {
                "WorkflowTaskScheduled" => scheduled = Some(e),
                "WorkflowTaskStarted" => {
                    if let Some(s) = scheduled {
                        self.queue.extend(ms_between(s, e));
                    }
                    started = Some(e);
                }
                "WorkflowTaskCompleted" | "WorkflowTaskFailed" | "WorkflowTaskTimedOut" => {
                    if let Some(s) = started.take() {
                        self.run.extend(ms_between(s, e));
                    }
                }
                _ => {}
            }
        }
    }
    fn per_run(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let r = self.run.len() as f64 / self.runs.max(1) as f64;
        r
    }
}

fn activity_timings(h: &[Value], acc: &mut HashMap<String, (Vec<f64>, Vec<f64>, usize)>) {
    let mut by_id: HashMap<String, (String, &Value, Option<&Value>)> = HashMap::new();
    for e in h {
        match event_type(e).as_str() {
            "ActivityTaskScheduled" => {
                let name = attr(e, "activityTaskScheduledEventAttributes")["activityType"]["name"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                by_id.insert(id_of(&e["eventId"]), (name, e, None));
            }
            "ActivityTaskStarted" => {
                let a = attr(e, "activityTaskStartedEventAttributes");
                let sid = id_of(&a["scheduledEventId"]);
                if let Some(entry) = by_id.get_mut(&sid) {
                    entry.2 = Some(e);
                    let slot = acc.entry(entry.0.clone()).or_default();
                    slot.0.extend(ms_between(entry.1, e));
                    if a["attempt"].as_i64().unwrap_or(1) > 1 {
                        slot.2 += 1;
                    }
                }
            }
            t if t.starts_with("ActivityTask") => {
                let key = format!("activityTask{}EventAttributes", &t["ActivityTask".len()..]);
                let sid = id_of(&e[&key]["scheduledEventId"]);
                if let Some((name, _, Some(started))) = by_id.get(&sid) {
                    acc.entry(name.clone()).or_default().1.extend(ms_between(started, e));
                }
            }
            _ => {}
        }
    }
}

pub(crate) async fn run(args: Args) -> Result<()> {
    let t = Temporal::new(&args.temporal_cli, &args.address);
    let mut r = HistoryReport::default();

    let mut acts = HashMap::new();
    let mut wft = WftAcc::default();
    let mut durations = Vec::new();
    let mut markers = 0usize;
    let fill_id = format!("pool-replenish/{}", args.fill_pool);
    for run in t.list(&format!("WorkflowId = '{fill_id}'"))? {
        let h = t.history(&run.workflow_id, &run.run_id)?;
        r.pool_replenish.add(&h);
        for (cid, crun) in children(&h) {
            let ch = t.history(&cid, &crun)?;
            r.issue_certificate.add(&ch);
            if ch.iter().any(|e| event_type(e) == "WorkflowExecutionCompleted") {
                r.issued += 1;
            }
            if let (Some(first), Some(last)) = (ch.first(), ch.last()) {
                durations.extend(ms_between(first, last));
            }
            markers += ch.iter().filter(|e| event_type(e) == "MarkerRecorded").count();
            activity_timings(&ch, &mut acts);
            wft.add(&ch);
        }
    }
    r.activities = acts
        .into_iter()
        .map(|(k, (q, run, retried))| {
            (
                k,
                Timing {
                    count: run.len(),
                    attempts_over_one: retried,
                    mean_queue_ms: mean(&q).unwrap_or(0.0),
                    mean_run_ms: mean(&run).unwrap_or(0.0),
                },
            )
        })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    {
        r.local_activities_per_issue = markers as f64 / r.issue_certificate.runs.max(1) as f64;
    }
    r.issue_wft_queue_ms = mean(&wft.queue).unwrap_or(0.0);
    r.issue_wft_run_ms = mean(&wft.run).unwrap_or(0.0);
    r.issue_wft_per_run = wft.per_run();
    r.issue_duration_ms = mean(&durations).unwrap_or(0.0);

    for run in t.list("WorkflowType = 'CertificateRenewal'")? {
        let h = t.history(&run.workflow_id, &run.run_id)?;
        r.certificate_renewal.add(&h);
        if run.completed() {
            r.renewals += 1;
        }
        for (cid, crun) in children(&h) {
            r.renewal_issues.add(&t.history(&cid, &crun)?);
        }
    }

    let desks: Vec<Vec<Value>> = t
        .list("WorkflowType = 'PoolClaims'")?
        .into_iter()
        .map(|run| t.history(&run.workflow_id, &run.run_id))
        .collect::<Result<_>>()?;
    for group in &args.claims {
        let (label, prefix) = group.split_once('=').unwrap_or((group.as_str(), group.as_str()));
        let c = claim_path(&t, &desks, &format!("{prefix}-"), args.claim_sample)?;
        r.claims.insert(label.to_owned(), c);
    }
    eprintln!(
        "history: {} issued ({} IssueCertificate events), {} renewals, {} claim groups read",
        r.issued,
        r.issue_certificate.events,
        r.renewals,
        r.claims.len()
    );
    write_json(&args.out, &r)
}
