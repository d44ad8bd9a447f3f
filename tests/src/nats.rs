//! A real nats-server with JetStream on a free loopback port, one per test.
//!
//! Like the shared stack's servers it runs under an `sh` watchdog that kills it when its stdin
//! closes, so it dies with the guard or with the test process, whichever goes first. `stop` and
//! `start_again` (or `restart`) keep the port and the store directory, so a test can take the
//! sink's server away and bring it back with its streams intact. `freeze` stops the process
//! without closing its sockets: a server that accepts and then never answers, like one behind a
//! network partition.

use anyhow::{Context, Result, bail, ensure};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A nats-server with JetStream, killed on drop.
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    running: Option<Running>,
    starts: u32,
}

struct Running {
    child: Child,
    /// Closing it tells the watchdog to kill the server.
    stdin: Option<ChildStdin>,
    log: PathBuf,
    pid_file: PathBuf,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> Result<Self> {
        let mut server = Self {
            bin: nats_server_bin()?,
            port: crate::free_port(),
            dir: tempfile::Builder::new().prefix("certpool-nats-").tempdir()?,
            running: None,
            starts: 0,
        };
        server.start_again()?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The loopback port, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops the server and waits until the port refuses connections. Stored streams stay.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(running) = self.running.take() {
            stop(running);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if Instant::now() > deadline {
                bail!("nats-server on port {} still accepts connections after stop", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts the server again on the same port and store directory; a no-op when running.
    pub fn start_again(&mut self) -> Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        self.starts += 1;
        let log = self.dir.path().join(format!("nats-server.{}.log", self.starts));
        let store = self.dir.path().join("store");
        let pid_file = self.dir.path().join("nats-server.pid");
        // A stale pid from the previous run must not be mistaken for this one's.
        let _ = std::fs::remove_file(&pid_file);
        let mut running = spawn(&self.bin, self.port, &store, log, pid_file)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && running.pid_file.is_file() {
                break;
            }
            if let Some(status) = running.child.try_wait()? {
                let text = std::fs::read_to_string(&running.log).unwrap_or_default();
                bail!("nats-server exited with {status}:\n{text}");
            }
            if Instant::now() > deadline {
                stop(running);
                bail!("nats-server not accepting connections on port {} after 20s", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.running = Some(running);
        Ok(())
    }

    /// Stops and starts the server: the sink's server going away and coming back.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Suspends the server process (SIGSTOP): connections stay open, nothing is answered.
    pub fn freeze(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let running = self.running.as_ref().context("nats-server is not running")?;
        let pid = std::fs::read_to_string(&running.pid_file).context("nats-server pid file")?;
        let pid = pid.trim();
        ensure!(pid.parse::<u32>().is_ok(), "bad pid file content {pid:?}");
        let status = Command::new("kill").arg(sig).arg(pid).status()?;
        ensure!(status.success(), "kill {sig} {pid}: {status}");
        Ok(())
    }

    /// The server's log of its current (or last) run, for failure messages.
    pub fn log(&self) -> String {
        let path = self.dir.path().join(format!("nats-server.{}.log", self.starts));
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            stop(running);
        }
    }
}

fn nats_server_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("CERTPOOL_NATS_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let candidates = std::iter::once(PathBuf::from("/usr/sbin/nats-server")).chain(
        std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .map(|d| Path::new(d).join("nats-server"))
            .collect::<Vec<_>>(),
    );
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    bail!("nats-server not found (set CERTPOOL_NATS_SERVER_BIN, or apt-get install nats-server)")
}

fn spawn(bin: &Path, port: u16, store: &Path, log: PathBuf, pid_file: PathBuf) -> Result<Running> {
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let port = port.to_string();
    let store = store.to_str().context("store path is not UTF-8")?;
    let pid = pid_file.to_str().context("pid file path is not UTF-8")?;
    // The watchdog: the server is killed as soon as stdin closes, which also happens when the
    // test process dies without running any destructor. SIGCONT after SIGTERM, or a frozen
    // server would keep the signal pending forever.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$@" & p=$!; read -r _ || true; kill "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; wait "$p""#)
        .arg("watchdog")
        .arg(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd", store, "-P", pid])
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("spawn nats-server")?;
    let stdin = child.stdin.take();
    Ok(Running {
        child,
        stdin,
        log,
        pid_file,
    })
}

fn stop(mut running: Running) {
    drop(running.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = running.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The watchdog sent the server SIGTERM as soon as stdin closed; this only reaps a shell
    // whose server is slow to exit.
    let _ = running.child.kill();
    let _ = running.child.wait();
}
