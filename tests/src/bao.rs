//! A real OpenBao dev server (`bao server -dev`) on a free loopback port, one per test.
//!
//! Dev mode runs in memory, unsealed, with KV v2 mounted at `secret/` and a root token we choose.
//! Like the other servers it runs under an `sh` watchdog that kills it when its stdin closes, so
//! it dies with the guard or with the test process. Setup (AppRole, policies) goes through the
//! HTTP API with `curl`, as an operator would script it.

use crate::Proc;
use anyhow::{Context, Result, bail};
use std::process::Command;
use std::time::{Duration, Instant};

/// An OpenBao dev server, killed on drop.
pub struct BaoServer {
    port: u16,
    root_token: String,
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl BaoServer {
    /// Starts a dev server and waits until `sys/health` answers.
    pub fn start() -> Result<Self> {
        let bin = crate::find_binary("CERTPOOL_BAO_BIN", &[crate::repo_root().join(".venv/bin/bao")], "bao")?;
        let port = crate::free_port();
        let root_token = format!("root-{:016x}", crate::rand_u64());
        let dir = tempfile::Builder::new().prefix("certpool-bao-").tempdir()?;
        let home = dir.path().display().to_string();
        let proc = Proc::spawn(
            "bao server -dev",
            &bin,
            &[
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-root-token-id={root_token}"),
            ],
            &[("HOME", home.as_str())],
            dir.path().join("bao.log"),
        )?;
        let server = Self {
            port,
            root_token,
            proc,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server
                .curl("GET", "sys/health", None, None)
                .is_ok_and(|(code, _)| code == 200)
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "bao dev server did not become healthy in 30 s:\n{}",
                    server.proc.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// One API call with `curl`: `(status, body)`. `token` defaults to the root token.
    pub fn curl(&self, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> Result<(u16, String)> {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ])
        .arg("-H")
        .arg(format!("X-Vault-Token: {}", token.unwrap_or(&self.root_token)))
        .arg(format!("{}/v1/{path}", self.address()));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data", b]);
        }
        let out = cmd.output().context("run curl")?;
        if !out.status.success() {
            bail!("curl {method} {path}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8(out.stdout)?;
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        Ok((code.trim().parse()?, body.to_owned()))
    }

    /// Like [`Self::curl`] with the root token, failing on a non-2xx answer.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> Result<serde_json::Value> {
        let (code, text) = self.curl(method, path, body, None)?;
        if !(200..300).contains(&code) {
            bail!("bao {method} {path}: HTTP {code}: {text}");
        }
        Ok(if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// Writes a policy.
    pub fn put_policy(&self, name: &str, hcl: &str) -> Result<()> {
        let body = serde_json::json!({ "policy": hcl }).to_string();
        self.api("PUT", &format!("sys/policies/acl/{name}"), Some(&body))?;
        Ok(())
    }

    /// The least-privilege policy for a store on KV v2 `mount` under `prefix`.
    pub fn store_policy(mount: &str, prefix: &str) -> String {
        format!(
            "path \"{mount}/data/{prefix}/*\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\"] }}\n\
             path \"{mount}/metadata/{prefix}/*\" {{ capabilities = [\"read\", \"delete\", \"list\"] }}\n\
             path \"{mount}/metadata/{prefix}\" {{ capabilities = [\"list\"] }}\n"
        )
    }

    /// Enables AppRole (once) and creates `role` with `policy`; returns `(role_id, secret_id)`.
    pub fn approle(&self, role: &str, policy: &str) -> Result<(String, String)> {
        let (code, text) = self.curl("POST", "sys/auth/approle", Some(r#"{"type":"approle"}"#), None)?;
        if !(200..300).contains(&code) && !text.contains("path is already in use") {
            bail!("enable approle: HTTP {code}: {text}");
        }
        let body = serde_json::json!({ "token_policies": [policy], "token_ttl": "1h" }).to_string();
        self.api("POST", &format!("auth/approle/role/{role}"), Some(&body))?;
        let role_id = self.api("GET", &format!("auth/approle/role/{role}/role-id"), None)?["data"]["role_id"]
            .as_str()
            .context("role_id")?
            .to_owned();
        let secret_id =
            self.api("POST", &format!("auth/approle/role/{role}/secret-id"), Some("{}"))?["data"]["secret_id"]
                .as_str()
                .context("secret_id")?
                .to_owned();
        Ok((role_id, secret_id))
    }

    /// A token with exactly `policies`.
    pub fn token_with(&self, policies: &[&str]) -> Result<String> {
        let body = serde_json::json!({ "policies": policies, "no_default_policy": true, "ttl": "1h" }).to_string();
        let v = self.api("POST", "auth/token/create", Some(&body))?;
        Ok(v["auth"]["client_token"].as_str().context("client_token")?.to_owned())
    }

    /// Stops the server now (the port stays unused until the OS hands it out again).
    pub fn stop(&mut self) {
        self.proc.stop();
    }
}
