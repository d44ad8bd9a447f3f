//! Checks the certificates a pool holds: the chain, the SANs and the serial, from the inventory
//! and the secret store the test's config names.

use crate::Setup;
use anyhow::{Context, Result, anyhow, ensure};
use certpool_domain::cert::CertificateRecord;
use certpool_domain::plugins::CertFilter;
use x509_parser::pem::Pem;

/// One inventory record and what its stored chain says.
#[derive(Debug)]
pub struct Verified {
    /// The inventory's record.
    pub record: CertificateRecord,
    /// The leaf's public key (`subjectPublicKey` bits), to compare with the stored key.
    pub leaf_public_key: Vec<u8>,
}

/// Every certificate in the inventory: exactly `count` of them, each with a stored chain in
/// which every certificate is signed by the next and the last by `root_pem`, a leaf that
/// carries exactly `pool`'s materialized SANs, and the serial the inventory records.
pub async fn pool_certificates(setup: &Setup, pool: &str, root_pem: &str, count: usize) -> Result<Vec<Verified>> {
    let spec = setup.cfg.pool(pool).map_err(|m| anyhow!(m))?;
    let inventory = certpool_activities::inventory::from_config(
        &setup.cfg.config.inventory,
        &setup.cfg.base_dir,
        &setup.cfg.config.events,
    )
    .map_err(|f| anyhow!("{f}"))?;
    let secrets = certpool_activities::secrets::from_config(&setup.cfg.config.secrets, &setup.cfg.base_dir)
        .map_err(|f| anyhow!("{f}"))?;
    let certs = inventory
        .list(&CertFilter::default())
        .await
        .map_err(|f| anyhow!("{f}"))?;
    ensure!(
        certs.len() == count,
        "{} certificates, expected exactly {count}",
        certs.len()
    );
    let root_der = Pem::iter_from_buffer(root_pem.as_bytes())
        .next()
        .context("no PEM in the root")??
        .contents;
    let (_, root) = x509_parser::parse_x509_certificate(&root_der)?;
    let mut out = Vec::with_capacity(certs.len());
    for record in certs {
        ensure!(
            record.sans == spec.sans,
            "inventory keeps the materialized SANs: {:?}",
            record.sans
        );
        let chain = secrets
            .get(&record.chain_ref)
            .await
            .map_err(|f| anyhow!("{f}"))?
            .with_context(|| format!("no chain stored for {}", record.id))?;
        let pems: Vec<Pem> = Pem::iter_from_buffer(&chain).collect::<Result<_, _>>()?;
        ensure!(pems.len() >= 2, "{}: leaf and intermediate expected", record.id);
        let parsed = pems
            .iter()
            .map(|p| Ok(x509_parser::parse_x509_certificate(&p.contents)?.1))
            .collect::<Result<Vec<_>>>()?;
        for pair in parsed.windows(2) {
            pair[0].verify_signature(Some(pair[1].public_key()))?;
        }
        parsed
            .last()
            .context("empty chain")?
            .verify_signature(Some(root.public_key()))?;
        let leaf = &parsed[0];
        let mut sans: Vec<String> = leaf
            .subject_alternative_name()?
            .context("leaf without SANs")?
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
            .collect();
        let mut want = spec.sans.clone();
        sans.sort();
        want.sort();
        ensure!(sans == want, "the leaf carries {sans:?}, the pool's SANs are {want:?}");
        let serial: String = leaf.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
        ensure!(
            serial == record.serial,
            "leaf serial {serial}, inventory {}",
            record.serial
        );
        out.push(Verified {
            leaf_public_key: leaf.public_key().subject_public_key.data.to_vec(),
            record,
        });
    }
    Ok(out)
}
