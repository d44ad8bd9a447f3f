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

/// Formats Unix seconds as RFC 3339 UTC without pulling in a date crate.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        (rem % 3_600) / 60,
        rem % 60
    )
}

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
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }
}
