//! Test support: a real nginx terminating TLS with a certificate it reads from files, the way a
//! cluster's ingress does, for the `files` cluster target.
//!
//! Each [`Nginx`] runs from its own temp directory (config, pid file, logs, temp paths) on a free
//! loopback port, under the same stdin watchdog as the shared stack's servers, so it dies with
//! the guard or with the test process, whichever goes first.

use anyhow::{Context, Result, bail};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx serving `<cert_dir>/<cluster>.crt` and `.key` on `127.0.0.1:<port>`.
#[derive(Debug)]
pub struct Nginx {
    /// The cluster whose files it serves.
    pub cluster: String,
    /// Where `<cluster>.crt` and `<cluster>.key` live.
    pub cert_dir: PathBuf,
    /// Its `nginx.conf`.
    pub conf: PathBuf,
    /// The TLS port on 127.0.0.1.
    pub port: u16,
    /// The nginx binary.
    pub bin: PathBuf,
    /// Serial (lowercase hex) of the self-signed certificate it started with.
    pub initial_serial: String,
    dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    _tmp: tempfile::TempDir,
}

fn nginx_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("CERTPOOL_NGINX_BIN") {
        return Ok(PathBuf::from(p));
    }
    let default = PathBuf::from("/usr/sbin/nginx");
    if default.is_file() {
        return Ok(default);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("nginx");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("nginx not found (set CERTPOOL_NGINX_BIN, or apt-get install nginx-light)")
}

impl Nginx {
    /// Starts nginx for `cluster` with a fresh self-signed certificate for
    /// `localhost` and `<cluster>.certpool.test`, and waits until it accepts connections.
    pub fn start(cluster: &str) -> Result<Self> {
        let bin = nginx_bin()?;
        let tmp = tempfile::Builder::new().prefix("certpool-nginx-").tempdir()?;
        let dir = tmp.path().to_owned();
        let cert_dir = dir.join("certs");
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::create_dir_all(&cert_dir)?;

        // nginx refuses to start without a certificate, so the first one comes from here.
        let initial =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), format!("{cluster}.certpool.test")])?;
        let initial_pem = initial.cert.pem();
        std::fs::write(cert_dir.join(format!("{cluster}.crt")), &initial_pem)?;
        write_private(
            &cert_dir.join(format!("{cluster}.key")),
            &initial.signing_key.serialize_pem(),
        )?;
        let initial_serial = {
            let der = initial.cert.der();
            let (_, cert) = x509_parser::parse_x509_certificate(der).context("parse the initial certificate")?;
            cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect()
        };

        let port = crate::free_port();
        let d = dir.display();
        let c = cert_dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name _;
        ssl_certificate {c}/{cluster}.crt;
        ssl_certificate_key {c}/{cluster}.key;
        return 200 "ok\n";
    }}
}}
"#
            ),
        )?;

        let log = std::fs::File::create(dir.join("stderr.log"))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" & p=$!; read -r _ || true; kill "$p" 2>/dev/null; wait "$p""#)
            .arg("watchdog")
            .arg(&bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off; master_process on;"])
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn nginx")?;
        let stdin = child.stdin.take();
        let nginx = Self {
            cluster: cluster.to_owned(),
            cert_dir,
            conf,
            port,
            bin,
            initial_serial,
            dir,
            child,
            stdin,
            _tmp: tmp,
        };
        nginx.wait_ready(Duration::from_secs(15))?;
        Ok(nginx)
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            // The watchdog outlives a failed nginx, so its log is what tells.
            let log = self.logs();
            if log.contains("[emerg]") {
                bail!("nginx did not start:\n{log}");
            }
            if Instant::now() > deadline {
                bail!("nginx not listening on {} after {timeout:?}:\n{log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `nginx -c <conf> -s reload`, as an argv for a `files` target.
    pub fn reload_command(&self) -> Vec<String> {
        vec![
            self.bin.display().to_string(),
            "-c".into(),
            self.conf.display().to_string(),
            "-s".into(),
            "reload".into(),
        ]
    }

    /// Signals a reload and returns; nginx switches workers shortly after.
    pub fn reload(&self) -> Result<()> {
        let out = Command::new(&self.bin)
            .args(["-c"])
            .arg(&self.conf)
            .args(["-s", "reload"])
            .output()?;
        if !out.status.success() {
            bail!(
                "nginx -s reload: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The error log and the process's own output, for assertion messages.
    pub fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The watchdog is stuck; take the master down by its pid file rather than leave it.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("nginx.pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}
