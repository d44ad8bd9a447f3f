//! A real PostgreSQL server from the Debian packages, one per test binary, with a database per
//! test.
//!
//! `initdb` and `postgres` refuse to run as root, and CI runs as root: then both run as the
//! `postgres` system user that the Debian package creates (through `setpriv`, which execs, so
//! the watchdog's signal reaches the server itself), in a scratch directory handed to that user.
//! Host connections need a password (`scram-sha-256`), as in production.

use crate::{Proc, find_binary, free_port, wait_until};
use anyhow::{Context, Result, bail};
use sqlx::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Scratch directories are named with this prefix in the system's temporary directory.
const DIR_PREFIX: &str = "certpool-pg-";

/// The server lives as long as the test process and is never dropped, so its scratch
/// directory stays behind. Earlier runs' directories are removed here: those whose server is
/// gone (no `postmaster.pid`, or one naming a dead process) and that are not being set up right
/// now (untouched for ten minutes).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if !e.file_name().to_str().is_some_and(|n| n.starts_with(DIR_PREFIX)) {
            continue;
        }
        let pid_file = path.join("data/postmaster.pid");
        let stale = match std::fs::read_to_string(&pid_file) {
            Ok(text) => text
                .lines()
                .next()
                .and_then(|pid| pid.trim().parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
            Err(_) => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(600)),
        };
        if stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Superuser created by `initdb`.
pub const ADMIN: &str = "certpool_admin";

/// A PostgreSQL server on a free loopback port.
pub struct PgServer {
    port: u16,
    admin_password: String,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();

/// The server of this test binary, started on first use.
pub fn server() -> &'static PgServer {
    SERVER.get_or_init(|| PgServer::start().expect("start PostgreSQL"))
}

/// `initdb` of the newest PostgreSQL under `/usr/lib/postgresql/<major>/bin`.
fn initdb_binary() -> Result<PathBuf> {
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| {
                let e = e.ok()?;
                let major = e.file_name().to_str()?.parse().ok()?;
                Some((major, e.path().join("bin/initdb")))
            })
            .collect()
        })
        .unwrap_or_default();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let candidates: Vec<PathBuf> = candidates.into_iter().map(|(_, p)| p).collect();
    find_binary("CERTPOOL_INITDB_BIN", &candidates, "initdb")
}

/// `(uid, gid)` to run the server as when we are root, `None` otherwise.
fn unprivileged_user() -> Result<Option<(u32, u32)>> {
    let id = |args: &[&str]| -> Result<u32> {
        let out = Command::new("id").args(args).output().context("run id")?;
        if !out.status.success() {
            bail!("id {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8(out.stdout)?.trim().parse()?)
    };
    if id(&["-u"])? != 0 {
        return Ok(None);
    }
    let uid = id(&["-u", "postgres"]).context(
        "running as root, and PostgreSQL refuses to: no `postgres` user to run it as (install Debian's postgresql)",
    )?;
    Ok(Some((uid, id(&["-g", "postgres"])?)))
}

/// `program args…`, or `setpriv … program args…` to drop root.
fn as_user(user: Option<(u32, u32)>, program: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
    match user {
        None => (program.to_owned(), args.to_vec()),
        Some((uid, gid)) => {
            let mut all = vec![
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".to_owned(),
                program.display().to_string(),
            ];
            all.extend_from_slice(args);
            (PathBuf::from("setpriv"), all)
        }
    }
}

impl PgServer {
    /// `initdb` into a scratch directory, start `postgres` on a free port and wait until it
    /// accepts connections.
    pub fn start() -> Result<Self> {
        let initdb = initdb_binary()?;
        let bin = initdb.parent().context("initdb has no directory")?.to_owned();
        let user = unprivileged_user()?;
        remove_stale_dirs();
        let tmp = tempfile::Builder::new().prefix(DIR_PREFIX).tempdir()?;
        let dir = tmp.path().to_owned();
        let admin_password = format!("pw{:016x}", crate::rand_u64());
        std::fs::write(dir.join("pwfile"), &admin_password)?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
            std::os::unix::fs::chown(dir.join("pwfile"), Some(uid), Some(gid))?;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;

        let data = dir.join("data");
        let args: Vec<String> = [
            "-D",
            data.to_str().context("path")?,
            "-U",
            ADMIN,
            &format!("--pwfile={}", dir.join("pwfile").display()),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (program, args) = as_user(user, &initdb, &args);
        let out = Command::new(&program)
            .args(&args)
            .current_dir(&dir)
            .output()
            .with_context(|| format!("run {}", program.display()))?;
        if !out.status.success() {
            bail!(
                "initdb failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let port = free_port();
        let args: Vec<String> = [
            "-D",
            data.to_str().context("path")?,
            "-k",
            dir.to_str().context("path")?,
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            // Scratch data: durability buys nothing here and costs the shared disk.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            // Every test opens its own pools; parallel tests add up.
            "-c",
            "max_connections=300",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (program, args) = as_user(user, &bin.join("postgres"), &args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut proc = Proc::spawn("postgres", &program, &args, &[], dir.join("postgres.log"))?;
        let isready = bin.join("pg_isready");
        wait_until("postgres", &mut [&mut proc], Duration::from_secs(60), || {
            Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        })?;
        Ok(Self {
            port,
            admin_password,
            _proc: proc,
            _dir: tmp,
        })
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL for `user` with `password` on database `db`.
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!("postgres://{user}:{password}@127.0.0.1:{}/{db}", self.port)
    }

    /// Superuser URL on database `db`.
    pub fn admin_url(&self, db: &str) -> String {
        self.url(ADMIN, &self.admin_password, db)
    }

    /// A superuser connection to database `db`.
    pub async fn admin(&self, db: &str) -> Result<sqlx::PgConnection> {
        sqlx::PgConnection::connect(&self.admin_url(db))
            .await
            .with_context(|| format!("connect to {db} as {ADMIN}"))
    }

    /// Creates an empty database with a name no other test uses and returns the name.
    pub async fn create_database(&self, prefix: &str) -> Result<String> {
        let name = crate::unique_label(prefix).replace('-', "_");
        let mut conn = self.admin("postgres").await?;
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await?;
        conn.close().await?;
        Ok(name)
    }
}
