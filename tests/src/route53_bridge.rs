//! A small authoritative DNS server (hickory-server, UDP and TCP on a loopback port) that
//! answers from the record sets of moto's Route 53, read through its API at query time. pebble
//! validates DNS-01 against it and the propagation check queries it, so an issuance through the
//! `route53` provider is proven end to end: what the provider wrote is what a resolver sees.
//!
//! It answers TXT from the hosted zone whose name is the longest suffix of the query name, SOA
//! and NS at a zone's apex (synthesized, `ns1.<zone>`), NODATA with the SOA for anything else in
//! a zone, and REFUSED outside every zone.

use crate::free_port;
use crate::moto::MotoServer;
use anyhow::{Context, Result};
use aws_sdk_route53::types::RrType;
use hickory_proto::op::{Header, ResponseCode};
use hickory_proto::rr::rdata::{NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::ServerFuture;
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use std::time::Duration;

/// The running bridge; stops when dropped.
#[derive(Debug)]
pub struct Route53Bridge {
    /// `127.0.0.1:<port>`, UDP and TCP.
    pub addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Route53Bridge {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Handler {
    client: aws_sdk_route53::Client,
}

/// The TXT value strings of a Route 53 record value (`"a" "b"` → `["a", "b"]`).
fn txt_strings(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            if quoted {
                out.push(std::mem::take(&mut cur));
            }
            quoted = !quoted;
        } else if quoted {
            cur.push(c);
        }
    }
    out
}

impl Handler {
    /// (zone apex, zone id) of the longest-suffix hosted zone of `qname` (lowercase, with dot).
    async fn zone_of(&self, qname: &str) -> Result<Option<(String, String)>> {
        let zones = self.client.list_hosted_zones().send().await?;
        Ok(zones
            .hosted_zones()
            .iter()
            .map(|z| {
                (
                    z.name().to_ascii_lowercase(),
                    z.id().rsplit('/').next().unwrap_or("").to_owned(),
                )
            })
            .filter(|(n, _)| qname == n || qname.ends_with(&format!(".{n}")))
            .max_by_key(|(n, _)| n.len()))
    }

    async fn answer(&self, qname: &Name, qtype: RecordType) -> Result<(ResponseCode, Vec<Record>, Vec<Record>)> {
        let name = qname.to_ascii().to_ascii_lowercase();
        let Some((apex, zone_id)) = self.zone_of(&name).await? else {
            return Ok((ResponseCode::Refused, vec![], vec![]));
        };
        let apex_name = Name::from_ascii(&apex)?;
        let ns_name = Name::from_ascii(format!("ns1.{apex}"))?;
        let soa = Record::from_rdata(
            apex_name.clone(),
            5,
            RData::SOA(SOA::new(
                ns_name.clone(),
                Name::from_ascii(format!("hostmaster.{apex}"))?,
                1,
                60,
                60,
                600,
                5,
            )),
        );
        let mut answers = Vec::new();
        match qtype {
            RecordType::SOA if name == apex => answers.push(soa.clone()),
            RecordType::NS if name == apex => {
                answers.push(Record::from_rdata(apex_name.clone(), 5, RData::NS(NS(ns_name))));
            }
            RecordType::TXT => {
                let out = self
                    .client
                    .list_resource_record_sets()
                    .hosted_zone_id(&zone_id)
                    .start_record_name(&name)
                    .start_record_type(RrType::Txt)
                    .max_items(1)
                    .send()
                    .await?;
                for set in out
                    .resource_record_sets()
                    .iter()
                    .filter(|s| s.name().eq_ignore_ascii_case(&name) && *s.r#type() == RrType::Txt)
                {
                    let ttl = u32::try_from(set.ttl().unwrap_or(5)).unwrap_or(5);
                    for r in set.resource_records() {
                        answers.push(Record::from_rdata(
                            qname.clone(),
                            ttl,
                            RData::TXT(TXT::new(txt_strings(r.value()))),
                        ));
                    }
                }
            }
            _ => {}
        }
        let authority = if answers.is_empty() { vec![soa] } else { vec![] };
        Ok((ResponseCode::NoError, answers, authority))
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let mut header = Header::response_from_request(request.header());
        header.set_authoritative(true);
        let builder = MessageResponseBuilder::from_message_request(request);
        let outcome = match request.request_info() {
            Ok(info) => {
                let qname = Name::from(info.query.name().clone());
                self.answer(&qname, info.query.query_type()).await
            }
            Err(e) => Err(e.into()),
        };
        let sent = match outcome {
            Ok((code, answers, authority)) => {
                header.set_response_code(code);
                response
                    .send_response(builder.build(header, answers.iter(), authority.iter(), [].iter(), [].iter()))
                    .await
            }
            Err(e) => {
                eprintln!("route53 bridge: {e:#}");
                response
                    .send_response(builder.error_msg(request.header(), ResponseCode::ServFail))
                    .await
            }
        };
        sent.unwrap_or_else(|_| {
            let mut h = Header::new();
            h.set_response_code(ResponseCode::ServFail);
            h.into()
        })
    }
}

/// Starts the bridge for `moto`'s Route 53 on its own thread and runtime (test runtimes come
/// and go with each test).
pub fn start(moto: &'static MotoServer) -> Result<Route53Bridge> {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
    let bind = addr.clone();
    let thread = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e.into()));
                return;
            }
        };
        rt.block_on(async move {
            let client = moto.route53_admin().await;
            let mut server = ServerFuture::new(Handler { client });
            let bound = async {
                server.register_socket(tokio::net::UdpSocket::bind(&bind).await?);
                server.register_listener(tokio::net::TcpListener::bind(&bind).await?, Duration::from_secs(5));
                Ok::<_, anyhow::Error>(())
            }
            .await;
            let failed = bound.is_err();
            let _ = ready_tx.send(bound);
            if failed {
                return;
            }
            tokio::select! {
                _ = stop_rx => {}
                r = server.block_until_done() => {
                    if let Err(e) = r {
                        eprintln!("route53 bridge stopped: {e}");
                    }
                }
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .context("route53 bridge did not start")??;
    Ok(Route53Bridge {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}
