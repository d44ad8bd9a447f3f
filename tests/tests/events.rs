//! The NATS JetStream event sink against a real nats-server: events land in the stream as
//! CloudEvents JSON, redeliveries are deduplicated, a server that is down gives a quick
//! transient failure rather than a hang, and the same sink recovers once the server is back.

#![allow(clippy::unwrap_used)]

use anyhow::{Result, ensure};
use certpool_activities::events::{self, nats::read_stream};
use certpool_domain::ErrorClass;
use certpool_domain::config::SinkConfig;
use certpool_domain::events::{CloudEvent, EventType, TYPE_PREFIX};
use certpool_domain::plugins::EventSink;
use certpool_tests::nats::NatsServer;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The brief allows ~10 s (the ack timeout) for a publish to a dead server; a little slack for a
/// loaded machine.
const FAIL_WITHIN: Duration = Duration::from_secs(12);

fn event(id: &str, ty: EventType) -> CloudEvent {
    CloudEvent {
        specversion: "1.0".into(),
        id: id.into(),
        source: "certpool/it".into(),
        ty: format!("{TYPE_PREFIX}{}", ty.as_str()),
        subject: Some(format!("cert-{id}")),
        time: "2025-06-01T12:00:00Z".into(),
        datacontenttype: "application/json".into(),
        data: serde_json::json!({"id": id, "pool": "aws-use1", "sans": ["*.use1.aws.example.net"]}),
    }
}

fn sink(server: &NatsServer, stream: &str) -> Arc<dyn EventSink> {
    let cfg = SinkConfig::Nats {
        url: server.url(),
        stream: stream.into(),
        subject_prefix: "certpool".into(),
    };
    events::from_config("it", &cfg, Path::new("/")).unwrap()
}

/// The stream's messages, parsed back into events.
async fn stored(server: &NatsServer, stream: &str) -> Result<Vec<CloudEvent>> {
    let raw = read_stream(&server.url(), stream, 100).await?;
    Ok(raw.iter().map(|m| serde_json::from_slice(m).unwrap()).collect())
}

/// `NatsServer` waits with blocking sleeps; keep them off the runtime's async threads.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn publish_expecting_transient(sink: &dyn EventSink, e: &CloudEvent) -> Result<()> {
    let started = Instant::now();
    let result = sink.publish(e).await;
    let took = started.elapsed();
    let failure = match result {
        Ok(()) => anyhow::bail!("publishing to a stopped server succeeded"),
        Err(f) => f,
    };
    ensure!(failure.class == ErrorClass::Transient, "not transient: {failure}");
    ensure!(took < FAIL_WITHIN, "failing took {took:?}: {failure}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_events_land_in_the_stream_as_cloudevents() -> Result<()> {
    let server = blocking(NatsServer::start)?;
    let sink = sink(&server, "FIVE");
    let types = [
        EventType::Issued,
        EventType::Assigned,
        EventType::Renewed,
        EventType::Delivered,
        EventType::PoolLow,
    ];
    let sent: Vec<CloudEvent> = types
        .iter()
        .enumerate()
        .map(|(i, t)| event(&format!("five-{i}"), *t))
        .collect();
    for e in &sent {
        sink.publish(e).await?;
    }

    let raw = read_stream(&server.url(), "FIVE", 100).await?;
    ensure!(
        raw.len() == 5,
        "{} messages in the stream:\n{}",
        raw.len(),
        server.log()
    );
    for (bytes, e) in raw.iter().zip(&sent) {
        // Byte for byte what the webhook would POST: the CloudEvent's JSON, nothing added.
        assert_eq!(bytes, &serde_json::to_vec(e)?);
        assert_eq!(&serde_json::from_slice::<CloudEvent>(bytes)?, e);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_are_deduplicated() -> Result<()> {
    let server = blocking(NatsServer::start)?;
    let sink = sink(&server, "DEDUP");
    let first = event("dup-1", EventType::Renewed);
    let second = event("dup-2", EventType::Renewed);
    sink.publish(&first).await?;
    // The outbox redelivers after a lost ack; JetStream must keep one copy.
    sink.publish(&first).await?;
    sink.publish(&second).await?;
    sink.publish(&first).await?;

    assert_eq!(stored(&server, "DEDUP").await?, vec![first, second]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_fails_fast_and_the_same_sink_reconnects() -> Result<()> {
    let mut server = blocking(NatsServer::start)?;
    let sink = sink(&server, "OUTAGE");
    let before = event("outage-before", EventType::Issued);
    sink.publish(&before).await?;

    blocking(|| server.stop())?;
    let during = event("outage-during", EventType::Delivered);
    // Once on the connection that was live, once more dialling a port nobody listens on.
    publish_expecting_transient(sink.as_ref(), &during).await?;
    publish_expecting_transient(sink.as_ref(), &during).await?;

    blocking(|| server.start_again())?;
    sink.publish(&during).await?;

    // A quick bounce between two publishes, which the caller never notices as a failure.
    blocking(|| server.restart())?;
    let after = event("outage-after", EventType::Renewed);
    sink.publish(&after).await?;

    // File storage: what was acknowledged before the outage is still there.
    assert_eq!(stored(&server, "OUTAGE").await?, vec![before, during, after]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_whose_server_is_down_at_start_connects_later() -> Result<()> {
    let mut server = blocking(NatsServer::start)?;
    blocking(|| server.stop())?;
    // Building must not touch the network, or a worker could not start while NATS is down.
    let started = Instant::now();
    let sink = sink(&server, "LATE");
    assert!(started.elapsed() < Duration::from_secs(1));

    let e = event("late-1", EventType::Issued);
    publish_expecting_transient(sink.as_ref(), &e).await?;

    blocking(|| server.start_again())?;
    sink.publish(&e).await?;
    assert_eq!(stored(&server, "LATE").await?, vec![e]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_times_out_and_the_retry_is_deduplicated() -> Result<()> {
    let server = blocking(NatsServer::start)?;
    let sink = sink(&server, "FROZEN");
    let before = event("frozen-before", EventType::Issued);
    sink.publish(&before).await?;

    // The connection stays open but nothing is acknowledged: only the ack timeout ends the wait.
    server.freeze()?;
    let during = event("frozen-during", EventType::Renewed);
    publish_expecting_transient(sink.as_ref(), &during).await?;
    // Now a fresh dial, which the kernel accepts but the server never greets.
    publish_expecting_transient(sink.as_ref(), &during).await?;

    // The unacknowledged copy reaches the stream once the server resumes; the retry must not
    // add a second one.
    server.thaw()?;
    sink.publish(&during).await?;
    assert_eq!(stored(&server, "FROZEN").await?, vec![before, during]);
    Ok(())
}
