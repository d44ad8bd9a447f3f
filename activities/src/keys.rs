//! Private keys and CSRs (rcgen), and reading issued certificates (x509-parser).

use crate::acme::pem_blocks;
use certpool_domain::Failure;
use certpool_domain::config::KeyAlgorithm;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use zeroize::Zeroizing;

/// A new key as PEM (zeroized on drop) and a CSR for `sans` signed by it.
pub fn generate(sans: &[String], algorithm: KeyAlgorithm) -> Result<(Zeroizing<String>, Vec<u8>), Failure> {
    let alg = match algorithm {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    };
    let key = KeyPair::generate_for(alg).map_err(|e| Failure::permanent("keys.generate", e.to_string()))?;
    let mut params = CertificateParams::new(sans.to_vec())
        .map_err(|e| Failure::permanent("keys.csr", format!("SANs rejected: {e}")))?;
    let mut dn = DistinguishedName::new();
    if let Some(cn) = sans.iter().find(|s| !s.starts_with("*.")).or(sans.first()) {
        dn.push(DnType::CommonName, cn.clone());
    }
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .map_err(|e| Failure::permanent("keys.csr", e.to_string()))?;
    Ok((Zeroizing::new(key.serialize_pem()), csr.der().to_vec()))
}

/// Facts read from the leaf of an issued chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    /// Serial, lowercase hex without separators.
    pub serial: String,
    /// Issuer DN.
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// DNS SANs.
    pub sans: Vec<String>,
}

/// Parses the first certificate of a PEM chain.
pub fn leaf_info(chain_pem: &str) -> Result<LeafInfo, Failure> {
    let ders = pem_blocks(chain_pem.as_bytes(), "CERTIFICATE");
    let der = ders
        .first()
        .ok_or_else(|| Failure::permanent("certs.bad_chain", "the CA returned no PEM certificate"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Failure::permanent("certs.bad_chain", format!("leaf does not parse: {e}")))?;
    let serial = cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = name {
                sans.push((*d).to_owned());
            }
        }
    }
    Ok(LeafInfo {
        serial,
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_carries_the_sans_and_key_is_pem() {
        let sans = vec!["*.a.example.net".to_owned(), "a.example.net".to_owned()];
        let (key, csr) = generate(&sans, KeyAlgorithm::EcdsaP256).expect("generate");
        assert_eq!(
            pem_blocks(key.as_bytes(), "PRIVATE KEY").len(),
            1,
            "one PKCS#8 PEM block"
        );
        assert!(KeyPair::from_pem(&key).is_ok(), "the key parses");
        use x509_parser::prelude::FromDer;
        let (_, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&csr).expect("csr");
        let exts = req.requested_extensions().expect("extensions");
        let mut names = Vec::new();
        for e in exts {
            if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = e {
                for n in &san.general_names {
                    if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                        names.push((*d).to_owned());
                    }
                }
            }
        }
        assert_eq!(names, sans);
    }
}
