//! Issuance end to end against a real Temporal dev server, pebble and BIND.

#![allow(clippy::unwrap_used)]

use anyhow::{Result, anyhow};
use base64::Engine;
use certpool::fill::{self, FillResult};
use certpool_domain::cert::{CertState, paths};
use certpool_domain::config::KeyAlgorithm;
use certpool_domain::contracts::IssueRequest;
use certpool_tests::{
    BLOCKED, Setup, WorkerGuard, ZONE, json_with_decoded_payloads, setup, stack, txt_values_sync, unique_label,
};
use certpool_workflows::IssueCertificate;
use std::time::{Duration, Instant};
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

fn regional_pool(pool: &str, cloud: &str, size: u32) -> String {
    format!(
        r#"
[schemes.regional]
sans = ["*.{{region}}.{{cloud}}.{ZONE}", "{{region}}.{{cloud}}.{ZONE}", "api.{{region}}.{{cloud}}.{ZONE}"]

[pools.{pool}]
scheme = "regional"
cloud = "{cloud}"
region = "eu-west-1"
target_size = {size}
min_remaining_lifetime = "1d"
ca = "pebble"
dns = "bind"
"#
    )
}

async fn client(setup: &Setup) -> temporalio_client::Client {
    certpool::temporal::connect(&setup.cfg.config.temporal, "it")
        .await
        .unwrap()
}

/// A workflow failure flattened: every (type, message) along the cause chain.
fn failure_chain(f: &temporalio_common::protos::temporal::api::failure::v1::Failure) -> Vec<(String, String)> {
    use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
    let mut out = Vec::new();
    let mut cur = Some(f);
    while let Some(c) = cur {
        let ty = match &c.failure_info {
            Some(FailureInfo::ApplicationFailureInfo(a)) => a.r#type.clone(),
            Some(other) => format!("{other:?}").split('(').next().unwrap_or("").to_owned(),
            None => String::new(),
        };
        out.push((ty, c.message.clone()));
        cur = c.cause.as_deref();
    }
    out
}

/// Starts `IssueCertificate` directly; returns its failure chain and how long it took to fail.
async fn issue_expecting_failure(setup: &Setup, pool: &str, wf_id: &str) -> Result<(Vec<(String, String)>, Duration)> {
    let spec = setup.cfg.pool(pool).map_err(|m| anyhow!(m))?.clone();
    let c = client(setup).await;
    let started = Instant::now();
    let handle = c
        .start_workflow(
            IssueCertificate::run,
            IssueRequest::for_pool(&spec, unique_label("cert")),
            WorkflowStartOptions::new(setup.cfg.config.temporal.task_queue.clone(), wf_id.to_owned())
                .execution_timeout(Duration::from_secs(120))
                .build(),
        )
        .await?;
    match handle.get_result(WorkflowGetResultOptions::default()).await {
        Ok(v) => {
            let events = history(wf_id)
                .map(|(h, _)| {
                    h["events"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| {
                            e["eventType"]
                                .as_str()
                                .unwrap_or("")
                                .trim_start_matches("EVENT_TYPE_")
                                .to_owned()
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            Err(anyhow!("issuance unexpectedly succeeded: {v:?}; history: {events}"))
        }
        Err(WorkflowGetResultError::Failed(f)) => Ok((failure_chain(f.failure()), started.elapsed())),
        Err(e) => Err(anyhow!("unexpected outcome: {e}")),
    }
}

/// History of one workflow as the `temporal` CLI prints it, with payloads decoded.
fn history(wf_id: &str) -> Result<(serde_json::Value, String)> {
    let raw = stack().temporal_cli(&["workflow", "show", "--workflow-id", wf_id, "--output", "json"])?;
    let json: serde_json::Value = serde_json::from_str(&raw)?;
    Ok((json, json_with_decoded_payloads(&raw)))
}

/// Attempt numbers of the started events of an activity type in a history.
fn activity_attempts(history: &serde_json::Value, activity_type: &str) -> Vec<u64> {
    let events = history["events"].as_array().cloned().unwrap_or_default();
    let mut scheduled_ids = Vec::new();
    for e in &events {
        let a = &e["activityTaskScheduledEventAttributes"];
        if a["activityType"]["name"] == activity_type {
            scheduled_ids.push(
                e["eventId"]
                    .as_str()
                    .map(str::to_owned)
                    .or(e["eventId"].as_u64().map(|n| n.to_string())),
            );
        }
    }
    events
        .iter()
        .filter_map(|e| {
            let a = &e["activityTaskStartedEventAttributes"];
            let sid = a["scheduledEventId"]
                .as_str()
                .map(str::to_owned)
                .or(a["scheduledEventId"].as_u64().map(|n| n.to_string()));
            if a.is_object() && scheduled_ids.contains(&sid) {
                a["attempt"].as_u64()
            } else {
                None
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_of_three_fills_with_verified_certificates_and_no_key_in_history() -> Result<()> {
    let pool = unique_label("fill-");
    let cloud = unique_label("c");
    let setup = setup("fill", None, &regional_pool(&pool, &cloud, 3))?;
    let _worker = WorkerGuard::start(&setup);
    let c = client(&setup).await;
    let pools = vec![pool.clone()];
    fill::start(&c, &setup.cfg, &pools).await?;
    let results = fill::wait(&c, &pools, Some(Duration::from_secs(90)), |_| {}).await?;
    match &results[&pool] {
        FillResult::Full(o) => assert_eq!((o.ready, o.target), (3, 3)),
        FillResult::Failed(why) => panic!("fill failed: {why}"),
    }

    let spec = setup.cfg.pool(&pool).map_err(|m| anyhow!(m))?;
    let secrets = certpool_activities::secrets::from_config(&setup.cfg.config.secrets, &setup.cfg.base_dir)
        .map_err(|f| anyhow!("{f}"))?;
    let certs = certpool_tests::verify::pool_certificates(&setup, &pool, &stack().issuing_root()?, 3).await?;
    let mut secret_texts = Vec::new();
    for cert in &certs {
        assert_eq!(cert.record.state, CertState::Pooled);
        let key_pem = secrets
            .get(&paths::cert_key(&cert.record.id))
            .await
            .map_err(|f| anyhow!("{f}"))?
            .expect("key stored");
        let key = rcgen::KeyPair::from_pem(std::str::from_utf8(&key_pem)?)?;
        assert_eq!(
            key.public_key_raw(),
            cert.leaf_public_key.as_slice(),
            "stored key matches the certificate"
        );
        secret_texts.push(String::from_utf8(key_pem)?);
    }
    assert!(matches!(spec.key_algorithm, KeyAlgorithm::EcdsaP256));

    // No private key or account key in any history of this test's task queue.
    let account = secrets
        .get(&paths::acme_account("pebble"))
        .await
        .map_err(|f| anyhow!("{f}"))?
        .expect("account");
    let account: serde_json::Value = serde_json::from_slice(&account)?;
    let account_key = account["key_pkcs8"].as_str().unwrap().to_owned();
    let mut needles: Vec<String> = vec![account_key[..40].to_owned()];
    for pem in &secret_texts {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        needles.push(body[..40].to_owned());
        let der = base64::engine::general_purpose::STANDARD.decode(&body)?;
        needles.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der)[..40].to_owned());
    }
    // Visibility is eventually consistent: wait until every run is listed.
    let query = format!("TaskQueue = '{}'", setup.cfg.config.temporal.task_queue);
    let mut ids = Vec::new();
    for _ in 0..50 {
        let listed = stack().temporal_cli(&["workflow", "list", "--query", &query, "--output", "json"])?;
        let v: serde_json::Value = serde_json::from_str(&listed).unwrap_or(serde_json::Value::Null);
        ids = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w["execution"]["workflowId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        ids.len() >= 4,
        "replenisher and three issuances are listed, got {ids:?}"
    );
    for id in &ids {
        let (_, text) = history(id)?;
        assert!(!text.contains("PRIVATE KEY"), "{id}: history holds a PEM private key");
        for n in &needles {
            assert!(!text.contains(n.as_str()), "{id}: history holds raw key material");
        }
        assert!(
            text.contains("-----BEGIN CERTIFICATE-----") || id.starts_with("pool-replenish/"),
            "{id}: payloads were decoded"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_dns_update_fails_clearly_and_leaves_no_txt_record() -> Result<()> {
    let pool = unique_label("tsig-");
    let cloud = unique_label("c");
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let setup = setup("tsig", Some(&wrong), &regional_pool(&pool, &cloud, 1))?;
    let _worker = WorkerGuard::start(&setup);
    let wf_id = format!("it-tsig/{pool}");
    let (chain, took) = issue_expecting_failure(&setup, &pool, &wf_id).await?;
    let text = format!("{chain:?}");
    assert!(
        chain.iter().any(|(ty, _)| ty.starts_with("dns.")),
        "failure type names DNS: {text}"
    );
    assert!(
        text.contains("DNS present failed") && text.contains("127.0.0.1"),
        "failure says what and where: {text}"
    );
    assert!(
        took < Duration::from_secs(30),
        "a refused update is not retried for long ({took:?})"
    );
    let (h, _) = history(&wf_id)?;
    assert_eq!(
        activity_attempts(&h, "certpool.dns.present"),
        vec![1],
        "permanent: one attempt"
    );
    for name in [
        format!("_acme-challenge.eu-west-1.{cloud}.{ZONE}"),
        format!("_acme-challenge.api.eu-west-1.{cloud}.{ZONE}"),
    ] {
        assert_eq!(
            txt_values_sync(&stack().dns_server, &name)?,
            Vec::<String>::new(),
            "{name} must be clean"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocklisted_name_fails_permanently_after_one_attempt() -> Result<()> {
    let pool = unique_label("blocked-");
    let setup = setup(
        "blocked",
        None,
        &format!(
            r#"
[schemes.blocked]
sans = ["{{region}}.{BLOCKED}"]

[pools.{pool}]
scheme = "blocked"
cloud = "aws"
region = "r1"
target_size = 2
ca = "pebble"
dns = "bind"
"#
        ),
    )?;
    let _worker = WorkerGuard::start(&setup);
    let wf_id = format!("it-blocked/{pool}");
    let (chain, took) = issue_expecting_failure(&setup, &pool, &wf_id).await?;
    let text = format!("{chain:?}");
    assert!(
        chain.iter().any(|(ty, _)| ty == "acme.rejectedIdentifier"),
        "ACME problem type shows: {text}"
    );
    assert!(took < Duration::from_secs(20), "no retries ({took:?})");
    let (h, _) = history(&wf_id)?;
    assert_eq!(
        activity_attempts(&h, "certpool.acme.new_order"),
        vec![1],
        "permanent: one attempt"
    );

    // The pool's replenisher gives up too instead of looping on a config error.
    let c = client(&setup).await;
    let pools = vec![pool.clone()];
    fill::start(&c, &setup.cfg, &pools).await?;
    let results = fill::wait(&c, &pools, Some(Duration::from_secs(60)), |_| {}).await?;
    match &results[&pool] {
        FillResult::Failed(why) => assert!(why.contains("rejectedIdentifier") || why.contains("blocked"), "{why}"),
        FillResult::Full(o) => panic!("a blocklisted pool filled: {o:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_deadline_fails_the_issuance_and_still_cleans_up() -> Result<()> {
    let pool = unique_label("deadline-");
    let cloud = unique_label("c");
    let setup = certpool_tests::setup_full(
        "deadline",
        None,
        &regional_pool(&pool, &cloud, 1),
        &stack().pebble_directory,
        // Propagation can never be confirmed (nothing answers on port 9), so only the deadline
        // can end the wait.
        "[issuance]\nissue_timeout = \"2s\"\n\n[propagation]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"60s\"\n",
    )?;
    let _worker = WorkerGuard::start(&setup);
    let wf_id = format!("it-deadline/{pool}");
    let (chain, _) = issue_expecting_failure(&setup, &pool, &wf_id).await?;
    assert!(chain.iter().any(|(ty, _)| ty == "issue.deadline"), "{chain:?}");
    let (h, _) = history(&wf_id)?;
    assert_eq!(
        activity_attempts(&h, "certpool.dns.present"),
        vec![1],
        "records were presented"
    );
    assert_eq!(activity_attempts(&h, "certpool.dns.cleanup"), vec![1], "and cleaned up");
    for name in [
        format!("_acme-challenge.eu-west-1.{cloud}.{ZONE}"),
        format!("_acme-challenge.api.eu-west-1.{cloud}.{ZONE}"),
    ] {
        assert_eq!(
            txt_values_sync(&stack().dns_server, &name)?,
            Vec::<String>::new(),
            "{name} must be clean"
        );
    }
    Ok(())
}

/// The pool's CA is down (nothing listens at its directory URL): the fill's first order gives it
/// up after a few quick retries and the pool fills through its `backup_ca`. Every certificate
/// chains to the backup's root, and the fill's status names the failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_fills_through_the_backup_ca_when_its_ca_is_down() -> Result<()> {
    let pool = unique_label("backup-");
    let cloud = unique_label("c");
    let pools = regional_pool(&pool, &cloud, 2).replace("ca = \"pebble\"", "ca = \"down\"\nbackup_ca = \"pebble\"");
    let setup = certpool_tests::setup_full(
        "backup",
        None,
        &pools,
        &stack().pebble_directory,
        "[ca.down]\ndirectory_url = \"https://127.0.0.1:9/dir\"\nrequest_timeout = \"2s\"\n",
    )?;
    let _worker = WorkerGuard::start(&setup);
    let c = client(&setup).await;
    let names = vec![pool.clone()];
    let started = Instant::now();
    fill::start(&c, &setup.cfg, &names).await?;
    let mut last_error = None;
    let results = fill::wait(&c, &names, Some(Duration::from_secs(90)), |progress| {
        if let Some(e) = progress.get(&pool).and_then(|p| p.last_error.as_ref()) {
            last_error = Some(e.clone());
        }
    })
    .await?;
    match &results[&pool] {
        FillResult::Full(o) => assert_eq!((o.ready, o.target), (2, 2)),
        FillResult::Failed(why) => panic!("fill failed: {why}"),
    }
    eprintln!(
        "filled through the backup CA in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    certpool_tests::verify::pool_certificates(&setup, &pool, &stack().issuing_root()?, 2).await?;
    // The fill may end between two progress reports: ask the closed run as well.
    if last_error.is_none() {
        let progress = c
            .get_workflow_handle::<certpool_workflows::PoolReplenish>(certpool_domain::pool::replenish_workflow_id(
                &pool,
            ))
            .query(
                certpool_workflows::PoolReplenish::progress,
                (),
                temporalio_client::WorkflowQueryOptions::default(),
            )
            .await?;
        last_error = progress.last_error;
    }
    let last_error = last_error.unwrap_or_default();
    assert!(
        last_error.contains("CA down failed") && last_error.contains("backup CA pebble"),
        "{last_error}"
    );
    Ok(())
}

/// A renewal while the pool's CA is down: the first attempt gives that CA a few quick retries,
/// the next goes to the backup CA, and the cluster ends up on the successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_goes_to_the_backup_ca_when_the_pools_ca_is_down() -> Result<()> {
    let pool = unique_label("renew-backup-");
    let cloud = unique_label("c");
    let healthy = regional_pool(&pool, &cloud, 1);
    let extra = "[ca.down]\ndirectory_url = \"https://127.0.0.1:9/dir\"\nrequest_timeout = \"2s\"\n";
    let good = certpool_tests::setup_full("renew-backup", None, &healthy, &stack().pebble_directory, extra)?;
    let cert = {
        let _worker = WorkerGuard::start(&good);
        let c = client(&good).await;
        let names = vec![pool.clone()];
        fill::start(&c, &good.cfg, &names).await?;
        match &fill::wait(&c, &names, Some(Duration::from_secs(60)), |_| {}).await?[&pool] {
            FillResult::Full(_) => {}
            FillResult::Failed(why) => panic!("fill failed: {why}"),
        }
        certpool::client::CertpoolClient::from_client(c, &good.cfg.config.temporal)
            .claim(&pool, "renew-backup-1", None)
            .await
            .map_err(|e| anyhow!("claim: {e}"))?
    };
    // Same inventory and secrets; the pool's CA is now the one that is down.
    let outage = certpool_tests::setup_full(
        "renew-backup",
        None,
        &healthy.replace("ca = \"pebble\"", "ca = \"down\"\nbackup_ca = \"pebble\""),
        &stack().pebble_directory,
        extra,
    )?;
    let _worker = WorkerGuard::start(&outage);
    let c = client(&outage).await;
    let outcome = c
        .start_workflow(
            certpool_workflows::CertificateRenewal::run,
            certpool_domain::contracts::RenewalRequest {
                cert_id: cert.cert_id.clone(),
            },
            WorkflowStartOptions::new(
                outage.cfg.config.temporal.task_queue.clone(),
                certpool_domain::contracts::workflow_ids::renewal(&cert.cert_id, cert.not_after),
            )
            .build(),
        )
        .await?
        .get_result(WorkflowGetResultOptions::default())
        .await?;
    assert_eq!(outcome.predecessor, cert.cert_id);
    assert_eq!(outcome.clusters, vec!["renew-backup-1".to_owned()]);
    assert_ne!(outcome.successor, cert.cert_id);
    Ok(())
}
