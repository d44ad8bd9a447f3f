//! NATS JetStream: each event is published to `<subject_prefix>.<event type>` and counts as
//! delivered once the stream acknowledges it.
//!
//! Delivery from the outbox is at least once; the `Nats-Msg-Id: <event id>` header lets JetStream
//! drop redeliveries that arrive within the stream's duplicate window (2 minutes by default), so
//! consumers see each event once in practice.
//!
//! The connection is made on first publish, not when the sink is built, so a NATS server that is
//! down at worker start does not stop the worker. After any failure the connection is dropped and
//! the next publish connects afresh (and creates the stream again if someone deleted it).

use bytes::Bytes;
use certpool_domain::Failure;
use certpool_domain::events::{CloudEvent, TYPE_PREFIX};
use certpool_domain::plugins::EventSink;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use async_nats::connection::State;
use async_nats::jetstream::{self, context::CreateStreamErrorKind, context::PublishErrorKind};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds JetStream API requests (stream lookup and creation) and the wait for a publish ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// The client's own background reconnects. We drop a connection after any failure and dial
/// again on the next publish, so this only bounds how long a dropped client keeps dialling a
/// dead server in the background (~20 s with the default backoff) before it gives up.
const MAX_BACKGROUND_RECONNECTS: usize = 16;

/// Publishes events into a JetStream stream.
pub struct NatsSink {
    name: String,
    url: String,
    /// `url` without credentials, for errors and logs.
    shown: String,
    stream: String,
    subject_prefix: String,
    conn: Mutex<Conn>,
}

#[derive(Default)]
struct Conn {
    current: Option<Connected>,
    /// When and why the last dial failed, so that publishes queued behind it fail with it
    /// instead of each waiting out its own connect timeout in turn.
    last_failure: Option<(Instant, Failure)>,
    /// Counts connections, so that a publish that failed on an old connection does not drop a
    /// newer one another publish has made in the meantime.
    generation: u64,
}

struct Connected {
    client: async_nats::Client,
    js: jetstream::Context,
    generation: u64,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .field("url", &self.shown)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// Checks the config; connects only on the first publish.
    pub fn new(name: &str, url: &str, stream: &str, subject_prefix: &str) -> Result<Self, Failure> {
        let shown = super::redact_url(url);
        let bad = |m: String| Failure::permanent("config.events", format!("events.sinks.{name}: {m}"));
        if !url.starts_with("nats://") || shown.len() <= "nats://".len() {
            return Err(bad(format!("url {shown}…: must be nats://host:port")));
        }
        // The server's rules for stream names: they become tokens of API subjects.
        if stream.is_empty()
            || !stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(bad(format!("stream {stream:?}: use only A-Z, a-z, 0-9, '-' and '_'")));
        }
        if !is_valid_subject(subject_prefix) {
            return Err(bad(format!(
                "subject_prefix {subject_prefix:?}: dot-separated non-empty tokens without spaces, '*' or '>'"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            shown,
            stream: stream.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
            conn: Mutex::new(Conn::default()),
        })
    }

    /// `<subject_prefix>.<type without net.certpool.>`, e.g. `certpool.certificate.renewed`.
    pub fn subject(&self, event: &CloudEvent) -> Result<String, Failure> {
        let ty = event
            .ty
            .strip_prefix(TYPE_PREFIX)
            .filter(|t| is_valid_subject(t))
            .ok_or_else(|| {
                Failure::permanent(
                    "nats.bad_event",
                    format!("event {}: type {:?} is not {TYPE_PREFIX}<type>", event.id, event.ty),
                )
            })?;
        Ok(format!("{}.{ty}", self.subject_prefix))
    }

    /// The live connection, or a new one with the stream ensured. Dialling under the lock keeps
    /// a burst of publishes from dialling the server once each.
    async fn connection(&self) -> Result<(jetstream::Context, u64), Failure> {
        let queued_at = Instant::now();
        let mut conn = self.conn.lock().await;
        if let Some((at, failure)) = &conn.last_failure
            && *at >= queued_at
        {
            return Err(failure.clone());
        }
        if let Some(c) = &conn.current {
            // A client that lost its server queues publishes until it reconnects; dialling
            // afresh fails fast instead of waiting out the ack timeout.
            if c.client.connection_state() == State::Connected {
                return Ok((c.js.clone(), c.generation));
            }
            tracing::info!(sink = %self.name, server = %self.shown, "NATS connection lost, reconnecting");
            conn.current = None;
        }
        let dialled = async {
            let client = connect(&self.url, &self.shown).await?;
            let mut js = jetstream::new(client.clone());
            js.set_timeout(ACK_TIMEOUT);
            self.ensure_stream(&js).await?;
            Ok::<_, Failure>((client, js))
        };
        let (client, js) = match dialled.await {
            Ok(c) => c,
            Err(f) => {
                conn.last_failure = Some((Instant::now(), f.clone()));
                return Err(f);
            }
        };
        conn.last_failure = None;
        conn.generation += 1;
        let generation = conn.generation;
        conn.current = Some(Connected {
            client,
            js: js.clone(),
            generation,
        });
        tracing::info!(sink = %self.name, server = %self.shown, stream = %self.stream, "connected to NATS");
        Ok((js, generation))
    }

    async fn forget(&self, generation: u64) {
        let mut conn = self.conn.lock().await;
        if conn.current.as_ref().is_some_and(|c| c.generation == generation) {
            conn.current = None;
        }
    }

    /// Creates the stream if it is missing. An existing stream is left as it is, even if it
    /// does not capture our subjects: publishes then fail (no stream for the subject), which is
    /// the operator's call to fix rather than ours to overwrite; the warning says why.
    async fn ensure_stream(&self, js: &jetstream::Context) -> Result<(), Failure> {
        let ours = format!("{}.>", self.subject_prefix);
        let config = jetstream::stream::Config {
            name: self.stream.clone(),
            subjects: vec![ours.clone()],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        let what = format!("{}: stream {}", self.shown, self.stream);
        match js.get_or_create_stream(config).await {
            Ok(stream) => {
                let subjects = &stream.cached_info().config.subjects;
                if !subjects.iter().any(|s| *s == ours || s == ">") {
                    tracing::warn!(
                        sink = %self.name, stream = %self.stream, ?subjects,
                        "existing stream does not list {ours}; events outside its subjects will fail"
                    );
                }
                Ok(())
            }
            Err(e) => Err(match e.kind() {
                CreateStreamErrorKind::EmptyStreamName
                | CreateStreamErrorKind::InvalidStreamName
                | CreateStreamErrorKind::DomainAndExternalSet => {
                    Failure::permanent("nats.stream", format!("{what}: {e}"))
                }
                // The server refuses the config (subjects overlap another stream's, …): retrying
                // the same request cannot help.
                CreateStreamErrorKind::JetStream(api) if (400..500).contains(&api.code()) && api.code() != 408 => {
                    Failure::permanent("nats.stream", format!("{what}: {e}"))
                }
                _ => Failure::transient("nats.stream", format!("{what}: {e}")),
            }),
        }
    }

    async fn publish_on(&self, js: &jetstream::Context, subject: String, event: &CloudEvent) -> Result<(), Failure> {
        let payload = serde_json::to_vec(event).map_err(|e| Failure::permanent("nats.encode", e.to_string()))?;
        // Structured mode of the CloudEvents NATS binding: the payload is the whole event, and the
        // header lets consumers tell it from other messages on shared subjects.
        let message = jetstream::message::PublishMessage::build()
            .payload(Bytes::from(payload))
            .header("Content-Type", super::webhook::CONTENT_TYPE)
            .message_id(&event.id);
        let what = format!("{}: event {} to {subject}", self.shown, event.id);
        let publish_error = |e: jetstream::context::PublishError| match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => Failure::permanent("nats.publish", format!("{what}: {e}")),
            PublishErrorKind::TimedOut => Failure::transient("nats.timeout", format!("{what}: {e}")),
            _ => Failure::transient("nats.publish", format!("{what}: {e}")),
        };
        let ack = js.send_publish(subject.clone(), message).await.map_err(publish_error)?;
        // The ack future has its own timeout (the context's); this one is a backstop so a
        // publish can never hang whatever the client does.
        let ack = tokio::time::timeout(ACK_TIMEOUT + Duration::from_secs(1), ack)
            .await
            .map_err(|_| Failure::transient("nats.timeout", format!("{what}: no ack within {ACK_TIMEOUT:?}")))?
            .map_err(publish_error)?;
        if ack.duplicate {
            tracing::debug!(sink = %self.name, event = %event.id, "JetStream dropped a duplicate");
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventSink for NatsSink {
    async fn publish(&self, event: &CloudEvent) -> Result<(), Failure> {
        let subject = self.subject(event)?;
        let (js, generation) = self.connection().await?;
        let result = self.publish_on(&js, subject, event).await;
        if result.is_err() {
            // A message queued on a dropped client may still go out if it reconnects; its
            // Nats-Msg-Id makes the retry of this event harmless.
            self.forget(generation).await;
        }
        result
    }
}

async fn connect(url: &str, shown: &str) -> Result<async_nats::Client, Failure> {
    use async_nats::ConnectErrorKind as K;
    let options = async_nats::ConnectOptions::new()
        .name("certpool")
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(ACK_TIMEOUT))
        .max_reconnects(MAX_BACKGROUND_RECONNECTS);
    // The client's own timeout covers the handshake; this one also covers DNS.
    match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), options.connect(url)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(match e.kind() {
            K::ServerParse | K::Authentication | K::AuthorizationViolation => {
                Failure::permanent("nats.connect", format!("{shown}: {e}"))
            }
            _ => Failure::transient("nats.connect", format!("{shown}: {e}")),
        }),
        Err(_) => Err(Failure::transient(
            "nats.connect",
            format!("{shown}: no connection within {CONNECT_TIMEOUT:?}"),
        )),
    }
}

/// Dot-separated non-empty tokens without whitespace or wildcards.
fn is_valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.chars().any(|c| c.is_whitespace() || c == '*' || c == '>')
        })
}

/// Diagnostics and test helper: the payloads of up to `max` messages of `stream`, oldest first,
/// read through an ephemeral pull consumer that acknowledges nothing, so it changes nothing for
/// other consumers and the server removes it shortly after.
pub async fn read_stream(url: &str, stream: &str, max: usize) -> Result<Vec<Vec<u8>>, Failure> {
    let shown = super::redact_url(url);
    let failed = |e: &dyn std::fmt::Display| Failure::transient("nats.read", format!("{shown}: stream {stream}: {e}"));
    let read = async {
        let client = connect(url, &shown).await?;
        let mut js = jetstream::new(client);
        js.set_timeout(ACK_TIMEOUT);
        let stream_handle = js.get_stream(stream).await.map_err(|e| failed(&e))?;
        let consumer = stream_handle
            .create_consumer(jetstream::consumer::pull::Config {
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ack_policy: jetstream::consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut out = Vec::new();
        // `fetch` takes what is stored now and ends, rather than waiting for more.
        while out.len() < max {
            let mut batch = consumer
                .fetch()
                .max_messages(max - out.len())
                .messages()
                .await
                .map_err(|e| failed(&e))?;
            let before = out.len();
            while let Some(m) = batch.next().await {
                out.push(m.map_err(|e| failed(&e))?.payload.to_vec());
            }
            if out.len() == before {
                break;
            }
        }
        Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| failed(&"no answer within 30s"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use certpool_domain::ErrorClass;

    fn event(ty: &str) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            id: "e-1".into(),
            source: "certpool/test".into(),
            ty: ty.into(),
            subject: None,
            time: "2025-01-01T00:00:00Z".into(),
            datacontenttype: "application/json".into(),
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn subjects_follow_the_event_type() {
        let sink = NatsSink::new("n", "nats://127.0.0.1:4222", "CERTPOOL", "certpool").expect("sink");
        assert_eq!(
            sink.subject(&event("net.certpool.certificate.renewed"))
                .expect("subject"),
            "certpool.certificate.renewed"
        );
        assert_eq!(
            sink.subject(&event("net.certpool.pool.low")).expect("subject"),
            "certpool.pool.low"
        );
        for bad in [
            "com.example.x",
            "net.certpool.",
            "net.certpool.a..b",
            "net.certpool.a.>",
        ] {
            let e = sink.subject(&event(bad)).expect_err(bad);
            assert_eq!(e.class, ErrorClass::Permanent);
        }
    }

    #[test]
    fn bad_config_is_permanent() {
        for (url, stream, prefix) in [
            ("http://127.0.0.1:4222", "S", "p"),
            ("nats://", "S", "p"),
            ("nats://h:1", "A.B", "p"),
            ("nats://h:1", "", "p"),
            ("nats://h:1", "S", "p.>"),
            ("nats://h:1", "S", "p..q"),
            ("nats://h:1", "S", ""),
        ] {
            let e = NatsSink::new("n", url, stream, prefix).expect_err(&format!("{url} {stream} {prefix}"));
            assert_eq!(e.class, ErrorClass::Permanent);
        }
    }

    #[tokio::test]
    async fn a_missing_server_is_transient_and_fast() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let url = format!("nats://user:s3cr3t@127.0.0.1:{port}");
        let sink = NatsSink::new("n", &url, "CERTPOOL", "certpool").expect("building never connects");
        let started = std::time::Instant::now();
        let e = sink
            .publish(&event("net.certpool.certificate.issued"))
            .await
            .expect_err("nothing listens");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(e.class, ErrorClass::Transient, "{e}");
        assert!(!e.message.contains("s3cr3t"), "{e}");
        assert!(!format!("{sink:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn publishes_queued_behind_a_failed_dial_share_its_failure() {
        // Listening but never accepting: the kernel completes the handshake, the NATS greeting
        // never comes, so each dial takes the whole connect timeout.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("nats://{}", silent.local_addr().expect("addr"));
        let sink = NatsSink::new("n", &url, "CERTPOOL", "certpool").expect("sink");
        let e = event("net.certpool.certificate.issued");
        let started = std::time::Instant::now();
        let (a, b, c) = tokio::join!(sink.publish(&e), sink.publish(&e), sink.publish(&e));
        let took = started.elapsed();
        for r in [a, b, c] {
            assert_eq!(r.expect_err("silent server").class, ErrorClass::Transient);
        }
        assert!(took < CONNECT_TIMEOUT * 2, "{took:?}: queued publishes dialled again");
    }
}
