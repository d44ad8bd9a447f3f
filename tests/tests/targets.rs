//! The `files` cluster target against a real nginx: delivered certificates end up served, which
//! the TLS check sees; failed reloads and dead endpoints fail clearly and transiently.

#![allow(clippy::unwrap_used)]

use certpool_activities::keys::leaf_info;
use certpool_activities::targets::{self, verify};
use certpool_domain::ErrorClass;
use certpool_domain::config::TargetConfig;
use certpool_domain::plugins::{ClusterTarget, Delivery};
use certpool_tests::nginx::Nginx;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);

/// A fresh self-signed certificate for the cluster (fresh key, so a fresh serial).
fn certificate(cluster: &str, n: u32) -> Delivery {
    let c = rcgen::generate_simple_self_signed(vec![format!("{cluster}.certpool.test")]).unwrap();
    let chain_pem = c.cert.pem();
    Delivery {
        cluster: cluster.to_owned(),
        cert_id: format!("cert-{n}"),
        serial: leaf_info(&chain_pem).unwrap().serial,
        sans: vec![format!("{cluster}.certpool.test")],
        chain_pem,
        key_pem: c.signing_key.serialize_pem().into(),
    }
}

fn files_target(nginx: &Nginx, reload_command: Vec<String>, verify_timeout: Duration) -> Arc<dyn ClusterTarget> {
    let cfg = TargetConfig::Files {
        dir: nginx.cert_dir.clone(),
        reload_command,
        verify_endpoint: Some(nginx.endpoint()),
        verify_sni: Some("{cluster}.certpool.test".into()),
        verify_timeout: certpool_domain::Duration(verify_timeout),
    };
    targets::from_config("nginx", &cfg, Path::new("/")).unwrap()
}

async fn verify(target: &dyn ClusterTarget, delivery: &Delivery) -> Result<(), certpool_domain::Failure> {
    let (endpoint, sni) = target.verify_endpoint(&delivery.cluster).unwrap();
    verify::wait_for_serial(
        &endpoint,
        sni.as_deref(),
        &delivery.serial,
        target.verify_timeout(),
        POLL,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_certificates_are_served_after_reload() {
    let nginx = Nginx::start("c1").unwrap();
    let target = files_target(&nginx, nginx.reload_command(), Duration::from_secs(20));
    let (endpoint, sni) = target.verify_endpoint("c1").unwrap();
    assert_eq!(sni.as_deref(), Some("c1.certpool.test"));
    assert_eq!(
        verify::served_serial(&endpoint, sni.as_deref(), Duration::from_secs(5))
            .await
            .unwrap(),
        nginx.initial_serial
    );

    let a = certificate("c1", 1);
    target.deliver(&a).await.unwrap();
    verify(&*target, &a)
        .await
        .unwrap_or_else(|e| panic!("A not served: {e}\n{}", nginx.logs()));

    let b = certificate("c1", 2);
    assert_ne!(a.serial, b.serial);
    target.deliver(&b).await.unwrap();
    verify(&*target, &b)
        .await
        .unwrap_or_else(|e| panic!("B not served: {e}\n{}", nginx.logs()));

    // Delivering the same certificate again is harmless.
    target.deliver(&b).await.unwrap();
    verify(&*target, &b).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_nginx_refuses_fails_the_reload_and_is_not_served() {
    let nginx = Nginx::start("c2").unwrap();
    let target = files_target(&nginx, nginx.reload_command(), Duration::from_secs(2));
    // A chain whose key is not the one delivered. `nginx -s reload` loads the configuration
    // before signalling, so the command itself fails, and nginx keeps serving the old pair.
    let mut broken = certificate("c2", 1);
    broken.key_pem = certificate("c2", 2).key_pem;
    let e = target.deliver(&broken).await.expect_err("nginx refuses the pair");
    assert_eq!(
        (e.class, e.kind.as_str()),
        (ErrorClass::Transient, "target.reload_failed"),
        "{e}"
    );
    assert!(e.message.contains("key values mismatch"), "{e}");
    assert!(!e.message.contains("PRIVATE KEY"), "{e}");
    let e = verify(&*target, &broken)
        .await
        .expect_err("nginx keeps the old certificate");
    assert_eq!(
        (e.class, e.kind.as_str()),
        (ErrorClass::Transient, "target.verify_mismatch"),
        "{e}"
    );
    assert!(e.message.contains(&nginx.initial_serial), "{e}");
    assert!(e.message.contains(&broken.serial), "{e}");

    // Once a good pair arrives, it is served.
    let good = certificate("c2", 3);
    target.deliver(&good).await.unwrap();
    verify(&*target, &good)
        .await
        .unwrap_or_else(|e| panic!("good pair not served: {e}\n{}", nginx.logs()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_reload_command_is_a_clear_transient_failure() {
    let nginx = Nginx::start("c3").unwrap();
    let missing = nginx.conf.with_file_name("missing.conf");
    let command = vec![
        nginx.bin.display().to_string(),
        "-c".into(),
        missing.display().to_string(),
        "-s".into(),
        "reload".into(),
    ];
    let target = files_target(&nginx, command, Duration::from_secs(2));
    let d = certificate("c3", 1);
    let e = target.deliver(&d).await.expect_err("reload fails");
    assert_eq!(
        (e.class, e.kind.as_str()),
        (ErrorClass::Transient, "target.reload_failed"),
        "{e}"
    );
    assert!(e.message.contains("exit status: 1"), "{e}");
    assert!(e.message.contains("missing.conf"), "{e}");
    assert!(!e.message.contains("PRIVATE KEY"), "{e}");
    // The files are in place, the running nginx is untouched; a good reload picks them up.
    assert_eq!(
        verify::served_serial(&nginx.endpoint(), None, Duration::from_secs(5))
            .await
            .unwrap(),
        nginx.initial_serial
    );
    nginx.reload().unwrap();
    verify(&*target, &d).await.unwrap();
}

#[tokio::test]
async fn verification_against_a_closed_port_times_out_clearly() {
    let endpoint = format!("127.0.0.1:{}", certpool_tests::free_port());
    let started = std::time::Instant::now();
    let e = verify::wait_for_serial(
        &endpoint,
        Some("c4.certpool.test"),
        "01ab",
        Duration::from_secs(1),
        POLL,
    )
    .await
    .expect_err("nothing listens");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        (e.class, e.kind.as_str()),
        (ErrorClass::Transient, "target.verify_timeout"),
        "{e}"
    );
    assert!(e.message.contains(&endpoint), "{e}");
    assert!(e.message.contains("did not serve serial 01ab within 1s"), "{e}");
    assert!(e.message.contains("cannot connect"), "{e}");
}
