//! `local`: encrypted files in a directory.
//!
//! Each secret is one file, mode 0600 in 0700 directories, holding `CPS1 | nonce | AES-256-GCM
//! ciphertext` with the secret's path as associated data, so a file copied to another path does
//! not decrypt. Writes go to a temp file that is renamed into place: a crash never leaves a torn
//! secret.

use super::validate_path;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine;
use certpool_domain::Failure;
use certpool_domain::plugins::SecretStore;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"CPS1";
const SUFFIX: &str = ".secret";

/// Local encrypted secret store.
pub struct LocalSecretStore {
    root: PathBuf,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for LocalSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSecretStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> Failure {
    Failure::transient("secrets.io", format!("{what} {}: {e}", path.display()))
}

/// Parses a 32-byte key given as base64 (standard or URL-safe) or 64 hex digits.
pub fn parse_key(text: &str) -> Result<[u8; 32], Failure> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .ok()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .ok()
    };
    bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()).ok_or_else(|| {
        Failure::permanent(
            "secrets.bad_key",
            "secrets.encryption_key must be 32 bytes, as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)",
        )
    })
}

impl LocalSecretStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: PathBuf, key_text: &str) -> Result<Self, Failure> {
        let key = parse_key(key_text)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| io("create", &root, &e))?;
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| Failure::permanent("secrets.bad_key", "invalid AES-256 key length"))?;
        Ok(Self { root, cipher })
    }

    fn file(&self, path: &str) -> PathBuf {
        self.root.join(format!("{path}{SUFFIX}"))
    }

    fn seal(&self, path: &str, value: &[u8]) -> Result<Vec<u8>, Failure> {
        let nonce_bytes: [u8; 12] = rand::random();
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: value,
                    aad: path.as_bytes(),
                },
            )
            .map_err(|_| Failure::permanent("secrets.crypto", "encryption failed"))?;
        let mut out = Vec::with_capacity(4 + 12 + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_sealed(&self, path: &str, data: &[u8]) -> Result<Vec<u8>, Failure> {
        if data.len() < 16 || &data[..4] != MAGIC {
            return Err(Failure::permanent(
                "secrets.corrupt",
                format!("secret {path:?} is not a certpool secret file"),
            ));
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&data[4..16]),
                Payload {
                    msg: &data[16..],
                    aad: path.as_bytes(),
                },
            )
            .map_err(|_| {
                Failure::permanent(
                    "secrets.decrypt",
                    format!("secret {path:?} does not decrypt: wrong encryption key or tampered file"),
                )
            })
    }

    fn put_blocking(&self, path: &str, value: &[u8]) -> Result<(), Failure> {
        let file = self.file(path);
        let dir = file.parent().unwrap_or(&self.root).to_owned();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io("create", &dir, &e))?;
        let sealed = self.seal(path, value)?;
        let tmp = dir.join(format!(".tmp-{}", rand::random::<u64>()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&sealed)?;
            f.sync_all()?;
            fs::rename(&tmp, &file)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io("write", &file, &e));
        }
        Ok(())
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<String>, Failure> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("list", &dir, &e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io("list", &dir, &e))?;
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    let rel = rel.to_string_lossy();
                    if let Some(name) = rel.strip_suffix(SUFFIX)
                        && name.starts_with(prefix)
                    {
                        out.push(name.to_owned());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[async_trait]
impl SecretStore for LocalSecretStore {
    async fn put(&self, path: &str, value: &[u8]) -> Result<(), Failure> {
        validate_path(path)?;
        // Small files on a local disk: blocking briefly is cheaper than a thread hop.
        self.put_blocking(path, value)
    }

    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, Failure> {
        validate_path(path)?;
        let file = self.file(path);
        match fs::read(&file) {
            Ok(data) => self.open_sealed(path, &data).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Failure::permanent(
                "secrets.permission",
                format!("permission denied reading {}", file.display()),
            )),
            Err(e) => Err(io("read", &file, &e)),
        }
    }

    async fn delete(&self, path: &str) -> Result<(), Failure> {
        validate_path(path)?;
        let file = self.file(path);
        match fs::remove_file(&file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("delete", &file, &e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Failure> {
        self.list_blocking(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[tokio::test]
    async fn round_trip_encrypted_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalSecretStore::open(dir.path().join("s"), KEY).expect("open");
        store
            .put("certs/a/key", crate::test_key_pem().as_bytes())
            .await
            .expect("put");
        assert_eq!(
            store.get("certs/a/key").await.expect("get").as_deref(),
            Some(crate::test_key_pem().as_bytes())
        );
        let file = dir.path().join("s/certs/a/key.secret");
        let raw = fs::read(&file).expect("raw");
        assert!(!raw.windows(5).any(|w| w == b"BEGIN"), "plaintext on disk");
        assert_eq!(fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(store.list("certs/").await.expect("list"), vec!["certs/a/key"]);
        store.delete("certs/a/key").await.expect("delete");
        store.delete("certs/a/key").await.expect("delete twice");
        assert_eq!(store.get("certs/a/key").await.expect("get"), None);
    }

    #[tokio::test]
    async fn wrong_key_and_moved_file_fail_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalSecretStore::open(dir.path().to_owned(), KEY).expect("open");
        store.put("a", b"secret").await.expect("put");
        fs::copy(dir.path().join("a.secret"), dir.path().join("b.secret")).expect("copy");
        let err = store.get("b").await.expect_err("moved file").to_string();
        assert!(err.contains("does not decrypt"), "{err}");
        let other = LocalSecretStore::open(dir.path().to_owned(), &"11".repeat(32)).expect("open");
        assert!(
            other
                .get("a")
                .await
                .expect_err("wrong key")
                .to_string()
                .contains("wrong encryption key")
        );
    }

    #[tokio::test]
    async fn bad_paths_and_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalSecretStore::open(dir.path().to_owned(), KEY).expect("open");
        for bad in ["../x", "a//b", "", "a/./b", "a b"] {
            assert!(store.put(bad, b"v").await.is_err(), "{bad:?}");
        }
        assert!(LocalSecretStore::open(dir.path().to_owned(), "short").is_err());
    }
}
