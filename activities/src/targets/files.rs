//! The `files` target: writes `<dir>/<cluster>.key` and `<dir>/<cluster>.crt`, then runs a
//! reload command, for servers (nginx, haproxy, envoy …) that read their certificate from disk.

use super::{substitute, validate_cluster, verify_pair};
use async_trait::async_trait;
use certpool_domain::Failure;
use certpool_domain::plugins::{ClusterTarget, Delivery};
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long the reload command may run before it is killed.
pub const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How many trailing lines of the reload command's output a failure quotes.
const OUTPUT_TAIL_LINES: usize = 5;
const OUTPUT_TAIL_CHARS: usize = 1000;

/// Delivers into a directory and runs a reload command.
#[derive(Debug, Clone)]
pub struct FilesTarget {
    name: String,
    /// Absolute directory, possibly holding `{cluster}`.
    dir: String,
    reload_command: Vec<String>,
    reload_timeout: Duration,
    verify_endpoint: Option<String>,
    verify_sni: Option<String>,
    verify_timeout: Duration,
}

impl FilesTarget {
    /// A target writing into `dir` (where `{cluster}` is replaced) and running `reload_command`
    /// (argv, no shell, `{cluster}` replaced in every element; empty for none) afterwards.
    pub fn new(name: &str, dir: &Path, reload_command: Vec<String>) -> Result<Self, Failure> {
        // The template is substituted as text, so it has to be text.
        let dir = dir.to_str().ok_or_else(|| {
            Failure::permanent(
                "config.target",
                format!("targets.{name}.dir: {} is not valid UTF-8", dir.display()),
            )
        })?;
        Ok(Self {
            name: name.to_owned(),
            dir: dir.to_owned(),
            reload_command,
            reload_timeout: DEFAULT_RELOAD_TIMEOUT,
            verify_endpoint: None,
            verify_sni: None,
            verify_timeout: Duration::from_secs(60),
        })
    }

    /// Sets the TLS endpoint (`host:port`, `{cluster}` replaced) that must serve a delivered
    /// certificate, the SNI to send (`{cluster}` replaced) and how long to keep checking.
    #[must_use]
    pub fn with_verify(mut self, endpoint: Option<String>, sni: Option<String>, timeout: Duration) -> Self {
        self.verify_endpoint = endpoint;
        self.verify_sni = sni;
        self.verify_timeout = timeout;
        self
    }

    /// Overrides [`DEFAULT_RELOAD_TIMEOUT`].
    #[must_use]
    pub fn with_reload_timeout(mut self, timeout: Duration) -> Self {
        self.reload_timeout = timeout;
        self
    }

    /// The directory a cluster's files go to.
    pub fn dir_for(&self, cluster: &str) -> Result<PathBuf, Failure> {
        substitute(&self.dir, cluster).map(PathBuf::from)
    }

    async fn reload(&self, cluster: &str) -> Result<(), Failure> {
        let Some((program, args)) = self.reload_command.split_first() else {
            return Ok(());
        };
        let program = substitute(program, cluster)?;
        let args = args
            .iter()
            .map(|a| substitute(a, cluster))
            .collect::<Result<Vec<_>, _>>()?;
        let what = format!(
            "targets.{}: reload command {program:?} for cluster {cluster}",
            self.name
        );
        let child = tokio::process::Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A command that outlives its timeout is killed when the future is dropped, so a hung
            // reload never piles up behind retries.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                    Failure::permanent("target.reload_command", format!("{what}: cannot run it: {e}"))
                }
                _ => Failure::transient("target.reload_command", format!("{what}: cannot run it: {e}")),
            })?;
        let out = match tokio::time::timeout(self.reload_timeout, child.wait_with_output()).await {
            Err(_) => {
                return Err(Failure::transient(
                    "target.reload_timeout",
                    format!("{what}: still running after {:?}, killed", self.reload_timeout),
                ));
            }
            Ok(Err(e)) => return Err(Failure::transient("target.reload_failed", format!("{what}: {e}"))),
            Ok(Ok(out)) => out,
        };
        if out.status.success() {
            return Ok(());
        }
        // stderr is where commands explain themselves; some only print to stdout.
        let stream = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            &out.stderr
        } else {
            &out.stdout
        };
        let tail = output_tail(&String::from_utf8_lossy(stream));
        let detail = if tail.is_empty() {
            String::from(" (no output)")
        } else {
            format!(": {tail}")
        };
        Err(Failure::transient(
            "target.reload_failed",
            format!("{what} failed with {}{detail}", out.status),
        ))
    }
}

#[async_trait]
impl ClusterTarget for FilesTarget {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), Failure> {
        validate_cluster(&delivery.cluster)?;
        if delivery.key_pem.trim().is_empty() || delivery.chain_pem.trim().is_empty() {
            return Err(Failure::permanent(
                "target.incomplete_delivery",
                format!(
                    "targets.{}: certificate {} for cluster {} comes without a key or chain",
                    self.name, delivery.cert_id, delivery.cluster
                ),
            ));
        }
        let dir = self.dir_for(&delivery.cluster)?;
        let cluster = delivery.cluster.clone();
        let key = delivery.key_pem.clone();
        let chain = delivery.chain_pem.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || write_pair(&name, &dir, &cluster, key.as_bytes(), chain.as_bytes()))
            .await
            .map_err(|e| Failure::transient("target.write", format!("targets.{}: writer task: {e}", self.name)))??;
        self.reload(&delivery.cluster).await
    }

    fn verify_endpoint(&self, cluster: &str) -> Option<(String, Option<String>)> {
        verify_pair(self.verify_endpoint.as_deref(), self.verify_sni.as_deref(), cluster)
    }

    fn verify_timeout(&self) -> Duration {
        self.verify_timeout
    }
}

/// Writes the key, then the chain, each atomically.
///
/// Each file is replaced by a rename, so no reader ever sees a torn file. The pair as a whole is
/// not atomic: between the two renames the new key sits next to the old certificate. The key goes
/// first because whatever notices a change on its own (file watchers, hot-reloading proxies)
/// conventionally watches the certificate, so anyone who sees the new certificate also finds its
/// key. Servers told by the reload command read both after both renames. A crash between the two
/// leaves a mismatched pair that the activity's retry, which rewrites both, repairs.
fn write_pair(name: &str, dir: &Path, cluster: &str, key: &[u8], chain: &[u8]) -> Result<(), Failure> {
    let fail = |what: &str, path: &Path, e: io::Error| {
        let msg = format!("targets.{name}: {what} {}: {e}", path.display());
        // A directory we may not write to will not become writable by retrying.
        if e.kind() == io::ErrorKind::PermissionDenied {
            Failure::permanent("target.write", msg)
        } else {
            Failure::transient("target.write", msg)
        }
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail("cannot create", dir, e))?;
    for (file_name, contents, mode) in [
        (format!("{cluster}.key"), key, 0o600),
        (format!("{cluster}.crt"), chain, 0o644),
    ] {
        let path = dir.join(&file_name);
        write_atomic(dir, &file_name, contents, mode).map_err(|e| fail("cannot write", &path, e))?;
    }
    // The renames are durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail("cannot sync", dir, e))
}

fn write_atomic(dir: &Path, file_name: &str, contents: &[u8], mode: u32) -> io::Result<()> {
    // The leading dot keeps the temp name out of any `<cluster>.*` glob, and cluster ids never
    // start with a dot, so it cannot be mistaken for (or collide with) a delivered file.
    let tmp = dir.join(format!(".{file_name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        // Created 0600 so that the key is never readable by others, not even for an instant.
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(contents)?;
        if mode != 0o600 {
            f.set_permissions(Permissions::from_mode(mode))?;
        }
        f.sync_all()?;
        fs::rename(&tmp, dir.join(file_name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether a line could be part of key material: a PEM armour line or a long unbroken run of
/// base64. A reload command that echoes its input (`sh -x`, a tool dumping its config on error)
/// must not put the key into failure messages, history or logs.
fn looks_like_key_material(line: &str) -> bool {
    line.contains("PRIVATE KEY")
        || line.split_whitespace().any(|w| {
            w.len() >= 40
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
        })
}

/// The last few lines of a command's output, bounded in size, on one line, with anything that
/// looks like key material replaced.
fn output_tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| if looks_like_key_material(l) { "[redacted]" } else { l })
        .collect();
    let joined = lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..].join(" | ");
    let count = joined.chars().count();
    if count <= OUTPUT_TAIL_CHARS {
        joined
    } else {
        let tail: String = joined.chars().skip(count - OUTPUT_TAIL_CHARS).collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certpool_domain::ErrorClass;
    use std::os::unix::fs::MetadataExt;
    use zeroize::Zeroizing;

    fn delivery(cluster: &str, n: u32) -> Delivery {
        Delivery {
            cluster: cluster.into(),
            cert_id: format!("cert-{n}"),
            serial: format!("{n:02x}"),
            sans: vec!["a.example.net".into()],
            chain_pem: format!("-----BEGIN CERTIFICATE-----\nY2hhaW4{n}\n-----END CERTIFICATE-----\n"),
            // A real key (generated at run time) plus a marker, so deliveries differ by `n`.
            key_pem: Zeroizing::new(format!("{}# delivery {n:04}\n", crate::test_key_pem())),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn writes_key_and_chain_privately_into_the_cluster_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let template = tmp.path().join("tls/{cluster}");
        let target = FilesTarget::new("t", &template, vec![]).expect("target");
        target.deliver(&delivery("c1", 1)).await.expect("deliver");

        let dir = tmp.path().join("tls/c1");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            fs::read_to_string(dir.join("c1.key")).expect("key"),
            *delivery("c1", 1).key_pem
        );
        assert_eq!(
            fs::read_to_string(dir.join("c1.crt")).expect("crt"),
            delivery("c1", 1).chain_pem
        );
        assert_eq!(mode(&dir.join("c1.key")), 0o600);
        assert_eq!(mode(&dir.join("c1.crt")), 0o644);
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        assert_eq!(names.len(), 2, "no temp files left behind: {names:?}");
    }

    #[tokio::test]
    async fn redelivery_replaces_files_by_rename() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("{cluster}");
        let target = FilesTarget::new("t", &dir, vec![]).expect("target");
        let key = tmp.path().join("c1/c1.key");
        let crt = tmp.path().join("c1/c1.crt");
        target.deliver(&delivery("c1", 1)).await.expect("first");
        let before = (
            fs::metadata(&key).expect("key").ino(),
            fs::metadata(&crt).expect("crt").ino(),
        );
        // A reader holding the old file keeps reading the old, complete content.
        let old_reader = File::open(&crt).expect("open");
        fs::set_permissions(&key, Permissions::from_mode(0o644)).expect("chmod");

        target.deliver(&delivery("c1", 2)).await.expect("second");
        let after = (
            fs::metadata(&key).expect("key").ino(),
            fs::metadata(&crt).expect("crt").ino(),
        );
        assert_ne!(before.0, after.0, "key replaced, not rewritten in place");
        assert_ne!(before.1, after.1, "chain replaced, not rewritten in place");
        assert_eq!(mode(&key), 0o600, "a replaced key is private again");
        assert_eq!(fs::read_to_string(&crt).expect("crt"), delivery("c1", 2).chain_pem);
        assert_eq!(
            io::read_to_string(old_reader).expect("old"),
            delivery("c1", 1).chain_pem
        );
        // Idempotent.
        target.deliver(&delivery("c1", 2)).await.expect("again");
        assert_eq!(fs::read_to_string(&key).expect("key"), *delivery("c1", 2).key_pem);
    }

    #[tokio::test]
    async fn bad_cluster_ids_write_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/{cluster}");
        let target = FilesTarget::new("t", &dir, sh("touch ran")).expect("target");
        for bad in ["../../escape", "..", "C1", "x/y", ""] {
            let e = target.deliver(&delivery(bad, 1)).await.expect_err(bad);
            assert_eq!(e.class, ErrorClass::Permanent, "{bad:?}");
            assert_eq!(e.kind, "target.bad_cluster");
        }
        assert_eq!(
            fs::read_dir(tmp.path()).expect("read_dir").count(),
            0,
            "nothing created"
        );
    }

    #[tokio::test]
    async fn reload_command_gets_the_cluster_and_runs_after_both_writes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("{cluster}");
        let script = r#"test -s "$1/$0.key" && cat "$1/$0.crt" > "$1/reloaded-$0""#;
        let mut cmd = sh(script);
        cmd.push("{cluster}".into());
        cmd.push(dir.to_str().expect("utf-8").to_owned());
        let target = FilesTarget::new("t", &dir, cmd).expect("target");
        target.deliver(&delivery("c7", 7)).await.expect("deliver");
        assert_eq!(
            fs::read_to_string(tmp.path().join("c7/reloaded-c7")).expect("marker"),
            delivery("c7", 7).chain_pem
        );
    }

    #[tokio::test]
    async fn failing_reload_is_transient_and_quotes_the_end_of_stderr() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let script = "for i in 1 2 3 4 5 6 7 8; do echo noise-$i >&2; done; echo 'config test failed' >&2; exit 3";
        let target = FilesTarget::new("t", tmp.path(), sh(script)).expect("target");
        let e = target.deliver(&delivery("c1", 1)).await.expect_err("reload fails");
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(e.kind, "target.reload_failed");
        assert!(e.message.contains("exit status: 3"), "{}", e.message);
        assert!(e.message.contains("config test failed"), "{}", e.message);
        assert!(!e.message.contains("noise-1"), "only the tail: {}", e.message);
        assert!(!e.message.contains("PRIVATE KEY"), "{}", e.message);
        // The files are in place; the retry only has to reload again.
        assert!(tmp.path().join("c1.crt").is_file());

        let quiet = FilesTarget::new("t", tmp.path(), vec!["/bin/false".into()]).expect("target");
        let e = quiet.deliver(&delivery("c1", 1)).await.expect_err("reload fails");
        assert!(e.message.contains("(no output)"), "{}", e.message);
    }

    #[tokio::test]
    async fn hung_reload_is_killed_and_missing_command_is_permanent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let hung = FilesTarget::new("t", tmp.path(), vec!["/bin/sleep".into(), "30".into()])
            .expect("target")
            .with_reload_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let e = hung.deliver(&delivery("c1", 1)).await.expect_err("times out");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Transient, "target.reload_timeout")
        );

        let missing = FilesTarget::new("t", tmp.path(), vec!["/nonexistent/reload".into()]).expect("target");
        let e = missing.deliver(&delivery("c1", 1)).await.expect_err("no such command");
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Permanent, "target.reload_command")
        );
    }

    #[tokio::test]
    async fn verify_settings_come_through_with_the_cluster_filled_in() {
        let target = FilesTarget::new("t", Path::new("/x"), vec![])
            .expect("target")
            .with_verify(
                Some("127.0.0.1:8443".into()),
                Some("{cluster}.example.net".into()),
                Duration::from_secs(5),
            );
        assert_eq!(
            target.verify_endpoint("c1"),
            Some(("127.0.0.1:8443".into(), Some("c1.example.net".into())))
        );
        assert_eq!(target.verify_timeout(), Duration::from_secs(5));
        let none = FilesTarget::new("t", Path::new("/x"), vec![]).expect("target");
        assert_eq!(none.verify_endpoint("c1"), None);
    }

    #[test]
    fn output_tail_redacts_key_material() {
        let key = crate::test_key_pem();
        // The tail keeps five lines: the key's last lines and the two around it.
        let text = format!("{key}reloading\nfailed");
        let t = output_tail(&text);
        assert!(!t.contains("PRIVATE KEY"), "{t}");
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!t.contains(&line[..20]), "{t}");
        }
        assert!(t.contains("reloading") && t.contains("failed"), "{t}");
    }

    #[test]
    fn output_tail_is_bounded() {
        assert_eq!(output_tail("a\n\nb\n  c  \n"), "a | b | c");
        let long = "x".repeat(5000);
        let t = output_tail(&long);
        assert!(t.chars().count() <= OUTPUT_TAIL_CHARS + 1);
    }
}
