//! An in-process stand-in for the Google Cloud DNS v1 REST API (there is no emulator).
//!
//! It serves, on a free loopback port, the calls the `clouddns` provider makes, with the
//! semantics the API documents:
//!
//! - `GET  /dns/v1/projects/{p}/managedZones?dnsName=` (managedZones.list, exact dnsName filter)
//! - `GET  /dns/v1/projects/{p}/managedZones/{zone}` (managedZones.get)
//! - `GET  /dns/v1/projects/{p}/managedZones/{zone}/rrsets?name=&type=` (resourceRecordSets.list;
//!   `type` needs `name`, as in the API)
//! - `POST /dns/v1/projects/{p}/managedZones/{zone}/changes` (changes.create): atomic; a deletion
//!   must match the current set exactly (TTL and values) or the change is refused with
//!   `412 conditionNotMet`, a deletion of a missing set with `404 notFound`, an addition of a
//!   set that exists and is not deleted in the same change with `409 alreadyExists`; names
//!   outside the zone and empty sets are `400`. The change starts `pending`.
//! - `GET  /dns/v1/projects/{p}/managedZones/{zone}/changes/{id}` (changes.get): `done` once
//!   the configured delay has passed.
//!
//! Every call needs `Authorization: Bearer <JWT>`, a self-signed service-account JWT as
//! google-cloud-auth mints it: RS256, signed with a key the fixture issued (checked against its
//! public key), `iss` the account's email, not expired, with a Cloud DNS or cloud-platform scope.
//! Otherwise `401 UNAUTHENTICATED`; an account registered without access gets
//! `403 PERMISSION_DENIED`. Errors use the API's JSON error shape.
//!
//! Not reproduced: paging (`maxResults`/`pageToken`), the OAuth token endpoint (the Rust client
//! never calls it for service-account keys), `clientOperationId`, quotas and rate limits,
//! routing policies, DNSSEC signature rrdatas, TXT normalisation of unquoted or long strings,
//! SOA serial bumps, and propagation to real name servers.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use ring::signature::{self, KeyPair};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Scopes that let a token reach Cloud DNS.
const DNS_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/ndev.clouddns.readwrite",
    "https://www.googleapis.com/auth/cloud-platform",
];

/// Whether a zone is on the internet or only in VPC networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Public zone.
    Public,
    /// Private zone.
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RrSet {
    ttl: i64,
    rrdatas: Vec<String>,
}

#[derive(Debug)]
struct ZoneState {
    id: u64,
    dns_name: String,
    visibility: Visibility,
    /// (name, type) → set.
    rrsets: BTreeMap<(String, String), RrSet>,
    changes: Vec<ChangeState>,
}

#[derive(Debug)]
struct ChangeState {
    body: Value,
    done_at: Instant,
}

#[derive(Debug)]
struct Account {
    key_id: String,
    public_key: Vec<u8>,
    allowed: bool,
}

#[derive(Debug, Default)]
struct State {
    zones: BTreeMap<String, ZoneState>,
    accounts: HashMap<String, Account>,
    change_delay: Duration,
    /// `METHOD path` of every request, in order.
    calls: Vec<String>,
    /// Status codes of refused changes.create calls.
    refused_changes: Vec<u16>,
    /// Reads of rrsets held until this many have arrived (see [`CloudDnsFixture::hold_reads`]).
    read_barrier: Option<(Arc<tokio::sync::Barrier>, usize)>,
}

/// The running fixture. Dropping it stops the server.
#[derive(Debug)]
pub struct CloudDnsFixture {
    /// Project the zones belong to.
    pub project: String,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CloudDnsFixture {
    /// Starts a server for `project` on its own thread (so sync and async tests can share it).
    /// Changes are `done` after `change_delay`.
    pub fn start(project: &str, change_delay: Duration) -> Result<Self> {
        let state = Arc::new(Mutex::new(State {
            change_delay,
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let project_name = project.to_owned();
        let thread = std::thread::Builder::new().name("clouddns-fixture".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fixture runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("fixture listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = shared.clone();
                            let project = project_name.clone();
                            tokio::spawn(async move {
                                let service = hyper::service::service_fn(move |req| {
                                    let state = state.clone();
                                    let project = project.clone();
                                    async move { Ok::<_, std::convert::Infallible>(handle(&state, &project, req).await) }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        })?;
        Ok(Self {
            project: project.to_owned(),
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Base URL for the provider's `endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a managed zone (`dns_name` with or without the trailing dot).
    pub fn add_zone(&self, name: &str, dns_name: &str, visibility: Visibility) {
        let mut st = self.lock();
        let id = 1_000 + st.zones.len() as u64;
        st.zones.insert(
            name.to_owned(),
            ZoneState {
                id,
                dns_name: fqdn(dns_name),
                visibility,
                rrsets: BTreeMap::new(),
                changes: Vec::new(),
            },
        );
    }

    /// A new service account with a freshly generated RSA key; returns its key file (JSON).
    /// `allowed = false` makes the account authenticate but lack the Cloud DNS role.
    pub fn service_account(&self, email: &str, allowed: bool) -> Result<String> {
        let (json, key_id, public_key) = service_account_key(email, &self.project)?;
        self.lock().accounts.insert(
            email.to_owned(),
            Account {
                key_id,
                public_key,
                allowed,
            },
        );
        Ok(json)
    }

    /// A well-formed key file for an account this "project" has never heard of (a deleted
    /// account or a key from elsewhere): every call with it is `401`.
    pub fn unknown_service_account(&self, email: &str) -> Result<String> {
        Ok(service_account_key(email, &self.project)?.0)
    }

    /// TXT values at a name, unquoted, straight from the fixture's state.
    pub fn txt(&self, name: &str) -> Vec<String> {
        let name = fqdn(name);
        let st = self.lock();
        st.zones
            .values()
            .filter_map(|z| z.rrsets.get(&(name.clone(), "TXT".to_owned())))
            .flat_map(|r| r.rrdatas.iter().map(|d| d.trim_matches('"').to_owned()))
            .collect()
    }

    /// The TTL of the TXT set at a name.
    pub fn txt_ttl(&self, name: &str) -> Option<i64> {
        let name = fqdn(name);
        let st = self.lock();
        st.zones
            .values()
            .find_map(|z| z.rrsets.get(&(name.clone(), "TXT".to_owned())))
            .map(|r| r.ttl)
    }

    /// Adds a TXT value out of band, as another tool would (quoted, TTL 300), to the zone that
    /// holds the name.
    pub fn add_foreign_txt(&self, name: &str, value: &str) -> Result<()> {
        let name = fqdn(name);
        let mut st = self.lock();
        let zone = st
            .zones
            .values_mut()
            .filter(|z| in_zone(&name, &z.dns_name))
            .max_by_key(|z| z.dns_name.len())
            .ok_or_else(|| anyhow!("no zone holds {name}"))?;
        let set = zone.rrsets.entry((name, "TXT".to_owned())).or_insert_with(|| RrSet {
            ttl: 300,
            rrdatas: Vec::new(),
        });
        set.rrdatas.push(format!("\"{value}\""));
        Ok(())
    }

    /// Holds the next `n` resourceRecordSets.list calls until all `n` have arrived (or 5 s have
    /// passed), so that `n` concurrent writers are sure to read the same state.
    pub fn hold_reads(&self, n: usize) {
        self.lock().read_barrier = Some((Arc::new(tokio::sync::Barrier::new(n)), n));
    }

    /// `METHOD path` of every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// HTTP status of every refused changes.create so far.
    pub fn refused_changes(&self) -> Vec<u16> {
        self.lock().refused_changes.clone()
    }
}

impl Drop for CloudDnsFixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Generates an RSA key with `openssl` (ring cannot generate RSA keys) and builds the key file
/// google-cloud-auth reads. Returns the JSON, the key id and the public key (PKCS#1 DER).
fn service_account_key(email: &str, project: &str) -> Result<(String, String, Vec<u8>)> {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .context("run openssl to generate a service-account key (install the openssl package)")?;
    if !out.status.success() {
        bail!("openssl genpkey failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let pem = String::from_utf8(out.stdout)?;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
    let pair = signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| anyhow!("generated key rejected: {e}"))?;
    let key_id = format!("{:016x}", crate::rand_u64());
    let json = json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string();
    Ok((json, key_id, pair.public_key().as_ref().to_vec()))
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.strip_suffix(zone).is_some_and(|h| h.ends_with('.'))
}

/// (name, type, set) of one rrset in a change.
type Entry = (String, String, RrSet);

/// An API error before it becomes a response: HTTP code, reason, message.
#[derive(Debug)]
struct ApiError(u16, &'static str, String);

impl ApiError {
    fn reply(self) -> Response<Full<Bytes>> {
        error(self.0, self.1, &self.2)
    }
}

fn error(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    };
    let body = json!({"error": {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": status,
    }});
    respond(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn query_params(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks the bearer token; `Err` is the response to send.
fn authenticate(st: &State, req: &Request<Incoming>) -> Result<(), ApiError> {
    let unauthenticated = |why: &str| {
        ApiError(
            401,
            "authError",
            format!(
                "Request had invalid authentication credentials ({why}). Expected OAuth 2 access token, login cookie or other valid authentication credential."
            ),
        )
    };
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthenticated("no bearer token"))?;
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(unauthenticated("not a JWT"));
    };
    let decode = |p: &str| -> Option<Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok() };
    let (Some(header), Some(claims), Ok(sig)) = (decode(h), decode(c), URL_SAFE_NO_PAD.decode(s)) else {
        return Err(unauthenticated("malformed JWT"));
    };
    if header["alg"] != "RS256" {
        return Err(unauthenticated("unsupported alg"));
    }
    let iss = claims["iss"].as_str().unwrap_or_default();
    let account = st.accounts.get(iss).ok_or_else(|| unauthenticated("unknown account"))?;
    if header["kid"].as_str() != Some(account.key_id.as_str()) {
        return Err(unauthenticated("unknown key"));
    }
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &account.public_key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| unauthenticated("bad signature"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
        return Err(unauthenticated("expired"));
    }
    let scopes = claims["scope"].as_str().unwrap_or_default();
    let aud_ok = claims["aud"]
        .as_str()
        .is_some_and(|a| a.starts_with("https://dns.googleapis.com"));
    if !aud_ok && !scopes.split(' ').any(|s| DNS_SCOPES.contains(&s)) {
        return Err(ApiError(
            403,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.".into(),
        ));
    }
    if !account.allowed {
        return Err(ApiError(
            403,
            "forbidden",
            format!("Forbidden: {iss} lacks the permission for this call"),
        ));
    }
    Ok(())
}

async fn handle(state: &Mutex<State>, project: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = query_params(req.uri().query());
    let barrier = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.calls.push(format!("{method} {path}"));
        if let Err(e) = authenticate(&st, &req) {
            return e.reply();
        }
        if method == Method::GET && path.ends_with("/rrsets") {
            match st.read_barrier.take() {
                Some((b, left)) if left > 1 => {
                    st.read_barrier = Some((b.clone(), left - 1));
                    Some(b)
                }
                Some((b, _)) => Some(b),
                None => None,
            }
        } else {
            None
        }
    };
    if let Some(b) = barrier {
        let _ = tokio::time::timeout(Duration::from_secs(5), b.wait()).await;
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(400, "badRequest", "unreadable body"),
    };
    let Some(rest) = path.strip_prefix(&format!("/dns/v1/projects/{project}/managedZones")) else {
        if path.starts_with("/dns/v1/projects/") {
            return error(403, "forbidden", "The caller does not have permission on this project");
        }
        return error(404, "notFound", &format!("no such method {path}"));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    match (&method, segments.as_slice()) {
        (&Method::GET, []) => list_zones(&st, query.get("dnsName")),
        (&Method::GET, [zone]) => match st.zones.get(*zone) {
            Some(z) => respond(StatusCode::OK, &zone_json(zone, z)),
            None => zone_not_found(zone),
        },
        (&Method::GET, [zone, "rrsets"]) => match st.zones.get(*zone) {
            Some(z) => list_rrsets(z, query.get("name"), query.get("type")),
            None => zone_not_found(zone),
        },
        (&Method::POST, [zone, "changes"]) => {
            let delay = st.change_delay;
            let response = match st.zones.get_mut(*zone) {
                Some(z) => create_change(z, &body, delay),
                None => zone_not_found(zone),
            };
            if !response.status().is_success() {
                st.refused_changes.push(response.status().as_u16());
            }
            response
        }
        (&Method::GET, [zone, "changes", id]) => match st.zones.get(*zone) {
            Some(z) => match id.parse::<usize>().ok().and_then(|i| z.changes.get(i)) {
                Some(c) => {
                    let mut body = c.body.clone();
                    body["status"] = json!(if Instant::now() >= c.done_at { "done" } else { "pending" });
                    respond(StatusCode::OK, &body)
                }
                None => error(
                    404,
                    "notFound",
                    &format!("The 'parameters.changeId' resource named '{id}' does not exist."),
                ),
            },
            None => zone_not_found(zone),
        },
        _ => error(404, "notFound", &format!("no such method {method} {path}")),
    }
}

fn zone_not_found(zone: &str) -> Response<Full<Bytes>> {
    error(
        404,
        "notFound",
        &format!("The 'parameters.managedZone' resource named '{zone}' does not exist."),
    )
}

fn zone_json(name: &str, z: &ZoneState) -> Value {
    json!({
        "kind": "dns#managedZone",
        "name": name,
        "dnsName": z.dns_name,
        "id": z.id.to_string(),
        "description": "",
        "visibility": match z.visibility { Visibility::Public => "public", Visibility::Private => "private" },
        "nameServers": ["ns-cloud-a1.googledomains.com."],
    })
}

fn list_zones(st: &State, dns_name: Option<&String>) -> Response<Full<Bytes>> {
    let zones: Vec<Value> = st
        .zones
        .iter()
        .filter(|(_, z)| dns_name.is_none_or(|d| z.dns_name.eq_ignore_ascii_case(d)))
        .map(|(n, z)| zone_json(n, z))
        .collect();
    respond(
        StatusCode::OK,
        &json!({"kind": "dns#managedZonesListResponse", "managedZones": zones}),
    )
}

fn rrset_json(name: &str, ty: &str, r: &RrSet) -> Value {
    json!({"kind": "dns#resourceRecordSet", "name": name, "type": ty, "ttl": r.ttl, "rrdatas": r.rrdatas})
}

fn list_rrsets(z: &ZoneState, name: Option<&String>, ty: Option<&String>) -> Response<Full<Bytes>> {
    if ty.is_some() && name.is_none() {
        return error(
            400,
            "invalid",
            "Invalid value for 'parameters.type': type requires name",
        );
    }
    let sets: Vec<Value> = z
        .rrsets
        .iter()
        .filter(|((n, t), _)| name.is_none_or(|q| n.eq_ignore_ascii_case(q)) && ty.is_none_or(|q| t == q))
        .map(|((n, t), r)| rrset_json(n, t, r))
        .collect();
    respond(
        StatusCode::OK,
        &json!({"kind": "dns#resourceRecordSetsListResponse", "rrsets": sets}),
    )
}

/// changes.create: validates everything first, then applies all of it (atomic).
fn create_change(z: &mut ZoneState, body: &[u8], delay: Duration) -> Response<Full<Bytes>> {
    let Ok(change) = serde_json::from_slice::<Value>(body) else {
        return error(400, "parseError", "This API does not support parsing the request body.");
    };
    let parse = |field: &str| -> Result<Vec<Entry>, ApiError> {
        let mut out = Vec::new();
        for (i, r) in change[field].as_array().cloned().unwrap_or_default().iter().enumerate() {
            let at = format!("entity.change.{field}[{i}]");
            let (Some(name), Some(ty)) = (r["name"].as_str(), r["type"].as_str()) else {
                return Err(ApiError(
                    400,
                    "required",
                    format!("Required field '{at}.name' or '{at}.type' not specified"),
                ));
            };
            if !name.ends_with('.') || !in_zone(&name.to_ascii_lowercase(), &z.dns_name) {
                return Err(ApiError(
                    400,
                    "invalid",
                    format!(
                        "Invalid value for '{at}.name': '{name}' is not within zone {}",
                        z.dns_name
                    ),
                ));
            }
            let rrdatas: Vec<String> = r["rrdatas"]
                .as_array()
                .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if rrdatas.is_empty() {
                return Err(ApiError(
                    400,
                    "required",
                    format!("Required field '{at}.rrdatas' not specified"),
                ));
            }
            let Some(ttl) = r["ttl"].as_i64() else {
                return Err(ApiError(
                    400,
                    "required",
                    format!("Required field '{at}.ttl' not specified"),
                ));
            };
            out.push((name.to_ascii_lowercase(), ty.to_owned(), RrSet { ttl, rrdatas }));
        }
        Ok(out)
    };
    let deletions = match parse("deletions") {
        Ok(d) => d,
        Err(e) => return e.reply(),
    };
    let additions = match parse("additions") {
        Ok(a) => a,
        Err(e) => return e.reply(),
    };
    if deletions.is_empty() && additions.is_empty() {
        return error(
            400,
            "required",
            "The 'entity.change' resource has no additions or deletions.",
        );
    }
    for (i, (name, ty, wanted)) in deletions.iter().enumerate() {
        match z.rrsets.get(&(name.clone(), ty.clone())) {
            None => {
                return error(
                    404,
                    "notFound",
                    &format!("The 'entity.change.deletions[{i}]' resource named '{name} ({ty})' does not exist."),
                );
            }
            Some(current) => {
                let (mut a, mut b) = (current.rrdatas.clone(), wanted.rrdatas.clone());
                a.sort();
                b.sort();
                if current.ttl != wanted.ttl || a != b {
                    return error(
                        412,
                        "conditionNotMet",
                        &format!("Precondition not met for 'entity.change.deletions[{i}]'"),
                    );
                }
            }
        }
    }
    for (i, (name, ty, _)) in additions.iter().enumerate() {
        let deleted = deletions.iter().any(|(n, t, _)| n == name && t == ty);
        let twice = additions[..i].iter().any(|(n, t, _)| n == name && t == ty);
        if twice || (z.rrsets.contains_key(&(name.clone(), ty.clone())) && !deleted) {
            return error(
                409,
                "alreadyExists",
                &format!("The resource 'entity.change.additions[{i}]' named '{name} ({ty})' already exists"),
            );
        }
    }
    for (name, ty, _) in &deletions {
        z.rrsets.remove(&(name.clone(), ty.clone()));
    }
    for (name, ty, set) in &additions {
        z.rrsets.insert((name.clone(), ty.clone()), set.clone());
    }
    let id = z.changes.len();
    let to_json =
        |v: &[(String, String, RrSet)]| -> Vec<Value> { v.iter().map(|(n, t, r)| rrset_json(n, t, r)).collect() };
    let body = json!({
        "kind": "dns#change",
        "id": id.to_string(),
        "startTime": rfc3339_now(),
        "status": "pending",
        "additions": to_json(&additions),
        "deletions": to_json(&deletions),
    });
    z.changes.push(ChangeState {
        body: body.clone(),
        done_at: Instant::now() + delay,
    });
    let mut first = body;
    if delay.is_zero() {
        first["status"] = json!("done");
    }
    respond(StatusCode::OK, &first)
}

/// `2024-05-01T12:00:00.000Z`, as the API writes `startTime`.
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
