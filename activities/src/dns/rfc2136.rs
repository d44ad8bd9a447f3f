//! `rfc2136`: dynamic updates (RFC 2136) signed with TSIG (RFC 8945).
//!
//! All records of one call go in a single UPDATE message to the zone's primary, over TCP so
//! that large batches are not truncated. "Add to an RRset" appends to whatever TXT set is at
//! the name, and "delete an RR from an RRset" removes only the exact value, which is what makes
//! concurrent orders for the same name safe. Both operations are idempotent on the server.

use super::group_by_name;
use async_trait::async_trait;
use base64::Engine;
use certpool_domain::Failure;
use certpool_domain::config::{Rfc2136Config, TsigAlgorithm};
use certpool_domain::plugins::{DnsProvider, TxtRecord};
use futures::StreamExt;
use hickory_client::client::Client;
use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm as HickoryTsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::tcp::TcpClientStream;
use hickory_proto::xfer::{DnsHandle, DnsRequest, DnsRequestOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// An RFC 2136 provider bound to one zone.
pub struct Rfc2136 {
    name: String,
    server: SocketAddr,
    zone: Name,
    signer: TSigner,
    ttl: u32,
    timeout: Duration,
}

impl std::fmt::Debug for Rfc2136 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc2136")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Delete,
}

impl Rfc2136 {
    /// Builds the provider; the secret is the base64 TSIG key.
    pub fn new(name: &str, cfg: &Rfc2136Config, secret_b64: &str) -> Result<Self, Failure> {
        let bad = |m: String| Failure::permanent("config.dns", format!("dns.{name}: {m}"));
        let server: SocketAddr = cfg
            .server
            .parse()
            .map_err(|_| bad(format!("server {:?} must be an IP address and port", cfg.server)))?;
        let zone = Name::from_ascii(&cfg.zone).map_err(|e| bad(format!("zone {:?}: {e}", cfg.zone)))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret_b64.trim())
            .map_err(|_| bad("tsig_secret is not valid base64".into()))?;
        let key_name = Name::from_ascii(&cfg.tsig_key_name)
            .map_err(|e| bad(format!("tsig_key_name {:?}: {e}", cfg.tsig_key_name)))?;
        let algorithm = match cfg.tsig_algorithm {
            TsigAlgorithm::HmacSha256 => HickoryTsigAlgorithm::HmacSha256,
            TsigAlgorithm::HmacSha384 => HickoryTsigAlgorithm::HmacSha384,
            TsigAlgorithm::HmacSha512 => HickoryTsigAlgorithm::HmacSha512,
        };
        let signer = TSigner::new(key, algorithm, key_name, 300).map_err(|e| bad(format!("TSIG key: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            server,
            zone,
            signer,
            ttl: cfg.ttl,
            timeout: cfg.timeout.get(),
        })
    }

    fn build_update(&self, records: &[TxtRecord], op: Op) -> Result<Message, Failure> {
        let mut zone = Query::new();
        zone.set_name(self.zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        let mut msg = Message::new();
        msg.set_id(rand::random())
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Update)
            .set_recursion_desired(false);
        msg.add_zone(zone);
        for (name, values) in group_by_name(records) {
            let owner = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
                .map_err(|e| Failure::permanent("dns.bad_name", format!("{name:?} is not a valid DNS name: {e}")))?;
            if !self.zone.zone_of(&owner) {
                return Err(Failure::permanent(
                    "dns.outside_zone",
                    format!("{name} is outside zone {} of DNS provider {:?}", self.zone, self.name),
                ));
            }
            for value in values {
                let mut rec = Record::from_rdata(owner.clone(), self.ttl, RData::TXT(TXT::new(vec![value.to_owned()])));
                if let Op::Delete = op {
                    // RFC 2136 §2.5.4: class NONE and TTL 0 delete exactly this RR.
                    rec.set_dns_class(DNSClass::NONE);
                    rec.set_ttl(0);
                } else {
                    rec.set_dns_class(DNSClass::IN);
                }
                msg.add_update(rec);
            }
        }
        Ok(msg)
    }

    async fn send(&self, msg: Message) -> Result<(), Failure> {
        let what = if msg.updates().first().is_some_and(|r| r.dns_class() == DNSClass::NONE) {
            "delete"
        } else {
            "add"
        };
        let transient =
            |m: String| Failure::transient("dns.unreachable", format!("{} ({}): {m}", self.server, self.name));
        let (stream, handle) =
            TcpClientStream::new(self.server, None, Some(self.timeout), TokioRuntimeProvider::default());
        let (client, bg) = Client::with_timeout(stream, handle, self.timeout, Some(Arc::new(self.signer.clone())))
            .await
            .map_err(|e| transient(e.to_string()))?;
        let bg = tokio::spawn(bg);
        let result = client
            .send(DnsRequest::new(msg, DnsRequestOptions::default()))
            .next()
            .await;
        bg.abort();
        let response = match result {
            None => return Err(transient("connection closed without a response".into())),
            Some(Err(e)) => {
                let text = e.to_string();
                // hickory reports a response it cannot verify (BADSIG/BADKEY come back unsigned)
                // as a protocol error; that is a credentials problem, not an outage.
                let lower = text.to_ascii_lowercase();
                if lower.contains("tsig") || lower.contains("notauth") || lower.contains("signature") {
                    return Err(Failure::permanent(
                        "dns.tsig_rejected",
                        format!(
                            "{} refused the TSIG-signed {what} for DNS provider {:?}: {text}",
                            self.server, self.name
                        ),
                    ));
                }
                return Err(transient(text));
            }
            Some(Ok(r)) => r,
        };
        match response.response_code() {
            ResponseCode::NoError => Ok(()),
            code @ (ResponseCode::NotAuth | ResponseCode::Refused | ResponseCode::NotZone) => Err(Failure::permanent(
                "dns.update_refused",
                format!(
                    "{} answered {code} to the {what} for DNS provider {:?} (check the TSIG key and the server's update policy)",
                    self.server, self.name
                ),
            )),
            ResponseCode::ServFail => Err(transient(format!("{what} answered SERVFAIL"))),
            code => Err(Failure::permanent(
                "dns.update_failed",
                format!(
                    "{} answered {code} to the {what} for DNS provider {:?}",
                    self.server, self.name
                ),
            )),
        }
    }
}

#[async_trait]
impl DnsProvider for Rfc2136 {
    async fn present(&self, records: &[TxtRecord]) -> Result<(), Failure> {
        if records.is_empty() {
            return Ok(());
        }
        let msg = self.build_update(records, Op::Add)?;
        self.send(msg).await
    }

    async fn cleanup(&self, records: &[TxtRecord]) -> Result<(), Failure> {
        if records.is_empty() {
            return Ok(());
        }
        let msg = self.build_update(records, Op::Delete)?;
        self.send(msg).await
    }
}
