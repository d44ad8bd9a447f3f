//! Reads workflow lists and histories through the `temporal` CLI (`-o json`), which prints the
//! API's own JSON: what the UI shows, nothing reconstructed.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone)]
pub(crate) struct Temporal {
    pub cli: PathBuf,
    /// host:port of the frontend.
    pub address: String,
}

/// One execution from a visibility listing.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    pub workflow_id: String,
    pub run_id: String,
    pub status: String,
    pub start: Option<OffsetDateTime>,
    pub close: Option<OffsetDateTime>,
}

impl Execution {
    pub(crate) fn duration_secs(&self) -> Option<f64> {
        Some((self.close? - self.start?).as_seconds_f64())
    }
    pub(crate) fn completed(&self) -> bool {
        self.status.to_ascii_uppercase().contains("COMPLETED")
    }
}

pub(crate) fn parse_time(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

/// The CLI prints either one JSON document or a stream of them.
fn parse_stream(text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match v? {
            Value::Array(items) => out.extend(items),
            other => out.push(other),
        }
    }
    Ok(out)
}

impl Temporal {
    pub(crate) fn new(cli: &Path, address: &str) -> Self {
        Self {
            cli: cli.to_owned(),
            address: address.trim_start_matches("http://").to_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = std::process::Command::new(&self.cli)
            .args(args)
            .args(["--address", &self.address, "-o", "json"])
            .output()
            .with_context(|| format!("run {}", self.cli.display()))?;
        if !out.status.success() {
            bail!(
                "temporal {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Executions matching a visibility query (all runs, newest first).
    pub(crate) fn list(&self, query: &str) -> Result<Vec<Execution>> {
        let text = self.run(&["workflow", "list", "--query", query, "--limit", "100000"])?;
        Ok(parse_stream(&text)?
            .into_iter()
            .map(|v| Execution {
                workflow_id: v["execution"]["workflowId"].as_str().unwrap_or_default().to_owned(),
                run_id: v["execution"]["runId"].as_str().unwrap_or_default().to_owned(),
                status: v["status"].as_str().unwrap_or_default().to_owned(),
                start: parse_time(&v["startTime"]),
                close: parse_time(&v["closeTime"]),
            })
            .collect())
    }

    /// The events of one run.
    pub(crate) fn history(&self, workflow_id: &str, run_id: &str) -> Result<Vec<Value>> {
        let mut args = vec!["workflow", "show", "--workflow-id", workflow_id];
        if !run_id.is_empty() {
            args.extend(["--run-id", run_id]);
        }
        let text = self.run(&args)?;
        let docs = parse_stream(&text)?;
        let mut events = Vec::new();
        for d in docs {
            match d.get("events") {
                Some(Value::Array(e)) => events.extend(e.iter().cloned()),
                _ if d.get("eventId").is_some() => events.push(d),
                _ => {}
            }
        }
        Ok(events)
    }
}

/// Bytes of payload data in a value (`payloads[].data`, base64 in the JSON).
pub(crate) fn payload_bytes(v: &Value) -> u64 {
    match v {
        Value::Object(m) => {
            let mut n = 0;
            for (k, child) in m {
                if k == "payloads"
                    && let Value::Array(items) = child
                {
                    for p in items {
                        if let Some(Value::String(d)) = p.get("data") {
                            n += (d.trim_end_matches('=').len() as u64) * 3 / 4;
                        }
                    }
                } else {
                    n += payload_bytes(child);
                }
            }
            n
        }
        Value::Array(items) => items.iter().map(payload_bytes).sum(),
        _ => 0,
    }
}

/// The event type without the proto enum prefix: `ActivityTaskScheduled`.
pub(crate) fn event_type(e: &Value) -> String {
    let t = e["eventType"].as_str().unwrap_or_default();
    let t = t.strip_prefix("EVENT_TYPE_").unwrap_or(t);
    if t.contains('_') {
        // EVENT_TYPE_ACTIVITY_TASK_SCHEDULED -> ActivityTaskScheduled
        t.split('_')
            .map(|w| {
                let lower = w.to_ascii_lowercase();
                let mut c = lower.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    } else {
        t.to_owned()
    }
}
