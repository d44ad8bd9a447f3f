//! Tables and JSON for `pools status`, `certs list` and `plan`.

use certpool_domain::cert::{CertState, CertificateRecord};
use serde::Serialize;

/// One row of `pools status`.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatusRow {
    /// Pool name.
    pub pool: String,
    /// Target size.
    pub target: u32,
    /// Ready certificates.
    pub ready: u32,
    /// Issuances running now.
    pub in_flight: u32,
    /// Soonest expiry among ready certificates, RFC 3339.
    pub soonest_expiry: Option<String>,
    /// Last failure reported by a running fill.
    pub last_error: Option<String>,
}

pub use certpool_domain::time::rfc3339;

/// Renders rows as an aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// `pools status` as a table.
pub fn pools_table(rows: &[PoolStatusRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.pool.clone(),
                r.target.to_string(),
                r.ready.to_string(),
                r.in_flight.to_string(),
                r.soonest_expiry.clone().unwrap_or_else(|| "-".into()),
                r.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["POOL", "TARGET", "READY", "IN FLIGHT", "SOONEST EXPIRY", "LAST ERROR"],
        &body,
    )
}

/// One row of `certs list --output json`.
#[derive(Debug, Clone, Serialize)]
pub struct CertRow<'a> {
    /// Id.
    pub id: &'a str,
    /// Pool.
    pub pool: &'a str,
    /// SANs.
    pub sans: &'a [String],
    /// Serial.
    pub serial: &'a str,
    /// Expiry, RFC 3339.
    pub not_after: String,
    /// State.
    pub state: CertState,
}

/// `certs list` rows.
pub fn cert_rows(certs: &[CertificateRecord]) -> Vec<CertRow<'_>> {
    certs
        .iter()
        .map(|c| CertRow {
            id: &c.id,
            pool: &c.pool,
            sans: &c.sans,
            serial: &c.serial,
            not_after: rfc3339(c.not_after),
            state: c.state,
        })
        .collect()
}

/// `certs list` as a table.
pub fn certs_table(certs: &[CertificateRecord]) -> String {
    let body: Vec<Vec<String>> = certs
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.pool.clone(),
                c.sans.join(","),
                c.serial.clone(),
                rfc3339(c.not_after),
                c.state.to_string(),
            ]
        })
        .collect();
    table(&["ID", "POOL", "SANS", "SERIAL", "NOT AFTER", "STATE"], &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }
}
