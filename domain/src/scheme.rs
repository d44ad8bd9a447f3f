//! Certificate schemes: SAN templates that materialize into concrete domain lists.

use crate::pool::PoolTemplateValues;

/// Most SANs a certificate may carry (Let's Encrypt's limit for classic certificates).
pub const MAX_SANS: usize = 100;
/// Above this many SANs certpool warns: Let's Encrypt's short-lived profiles accept at most 25.
pub const SAN_WARN_THRESHOLD: usize = 25;

/// A placeholder that a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{cloud}`
    Cloud,
    /// `{region}`
    Region,
    /// `{network_id}`
    NetworkId,
    /// `{zone}`: list-valued, one SAN per zone.
    Zone,
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "cloud" => Self::Cloud,
            "region" => Self::Region,
            "network_id" => Self::NetworkId,
            "zone" => Self::Zone,
            _ => return None,
        })
    }

    /// Name as written in templates, without braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cloud => "cloud",
            Self::Region => "region",
            Self::NetworkId => "network_id",
            Self::Zone => "zone",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Slot(Placeholder),
}

/// One SAN template, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `*.{region}.{cloud}.example.net` and friends.
    pub fn parse(source: &str) -> Result<Self, SchemeError> {
        let err = |reason: String| SchemeError::Template {
            template: source.to_owned(),
            reason,
        };
        if source.trim().is_empty() {
            return Err(err("empty template".into()));
        }
        let mut segments = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(pos) if rest.as_bytes()[pos] == b'}' => {
                    return Err(err(format!(
                        "unmatched '}}' at byte {}",
                        source.len() - rest.len() + pos
                    )));
                }
                Some(pos) => {
                    if pos > 0 {
                        segments.push(Segment::Literal(rest[..pos].to_owned()));
                    }
                    let body = &rest[pos + 1..];
                    let end = body.find('}').ok_or_else(|| err("unclosed '{'".into()))?;
                    let name = &body[..end];
                    let ph = Placeholder::parse(name).ok_or_else(|| SchemeError::UnknownPlaceholder {
                        template: source.to_owned(),
                        placeholder: name.to_owned(),
                    })?;
                    segments.push(Segment::Slot(ph));
                    rest = &body[end + 1..];
                }
                None => {
                    segments.push(Segment::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Ok(Self {
            source: source.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn uses(&self, p: Placeholder) -> bool {
        self.segments.contains(&Segment::Slot(p))
    }

    fn render(&self, values: &PoolTemplateValues, zone: Option<&str>) -> Result<String, SchemeError> {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(s) => out.push_str(s),
                Segment::Slot(p) => {
                    let v = match p {
                        Placeholder::Cloud => Some(values.cloud.as_str()),
                        Placeholder::Region => Some(values.region.as_str()),
                        Placeholder::NetworkId => values.network_id.as_deref(),
                        Placeholder::Zone => zone,
                    };
                    let v = v.filter(|v| !v.is_empty()).ok_or(SchemeError::Unbound {
                        template: self.source.clone(),
                        placeholder: p.name(),
                    })?;
                    out.push_str(v);
                }
            }
        }
        Ok(out.to_ascii_lowercase())
    }
}

/// A named list of SAN templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    name: String,
    templates: Vec<Template>,
}

impl Scheme {
    /// Parses every template of a scheme.
    pub fn parse(name: &str, sans: &[String]) -> Result<Self, SchemeError> {
        if sans.is_empty() {
            return Err(SchemeError::Empty);
        }
        let templates = sans.iter().map(|s| Template::parse(s)).collect::<Result<_, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            templates,
        })
    }

    /// Scheme name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Materializes the SAN list for one pool: placeholders bound, `{zone}` expanded per zone,
    /// every name checked, duplicates removed (first occurrence wins, order kept).
    pub fn materialize(&self, values: &PoolTemplateValues) -> Result<Vec<String>, SchemeError> {
        let mut out: Vec<String> = Vec::new();
        for t in &self.templates {
            let names = if t.uses(Placeholder::Zone) {
                if values.zones.is_empty() {
                    return Err(SchemeError::Unbound {
                        template: t.source.clone(),
                        placeholder: Placeholder::Zone.name(),
                    });
                }
                values
                    .zones
                    .iter()
                    .map(|z| t.render(values, Some(z)))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                vec![t.render(values, None)?]
            };
            for n in names {
                validate_name(&n).map_err(|reason| SchemeError::Materialized {
                    template: t.source.clone(),
                    name: n.clone(),
                    reason,
                })?;
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        if out.len() > MAX_SANS {
            return Err(SchemeError::TooMany { count: out.len() });
        }
        Ok(out)
    }
}

/// Checks one materialized DNS name: RFC 1123 labels, a wildcard only as the whole leftmost
/// label, at most 253 characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > 253 {
        return Err(format!("{} characters, the limit is 253", name.len()));
    }
    if name.ends_with('.') {
        return Err("must not end with a dot".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("must have at least two labels".into());
    }
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" {
            if i != 0 {
                return Err("a wildcard may only be the whole leftmost label".into());
            }
            if labels.len() < 3 {
                return Err("a wildcard needs at least two labels below it".into());
            }
            continue;
        }
        if label.contains('*') {
            return Err(format!(
                "label {label:?}: a wildcard may only be the whole leftmost label"
            ));
        }
        if label.is_empty() {
            return Err("empty label (two dots in a row)".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(format!(
                "label {label:?} contains {c:?}; only letters, digits and '-' are allowed"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} must not start or end with '-'"));
        }
    }
    Ok(())
}

/// Why a scheme could not be parsed or materialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// The scheme has no templates.
    #[error("a scheme needs at least one SAN template")]
    Empty,
    /// The template text is malformed.
    #[error("template {template:?}: {reason}")]
    Template {
        /// The template.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// A placeholder certpool does not know.
    #[error(
        "template {template:?}: unknown placeholder {{{placeholder}}}; known: {{cloud}}, {{region}}, {{network_id}}, {{zone}}"
    )]
    UnknownPlaceholder {
        /// The template.
        template: String,
        /// The unknown name.
        placeholder: String,
    },
    /// The pool gives no value for a placeholder the template uses.
    #[error("template {template:?}: placeholder {{{placeholder}}} is not bound by the pool")]
    Unbound {
        /// The template.
        template: String,
        /// The placeholder.
        placeholder: &'static str,
    },
    /// A materialized name is not a valid DNS name.
    #[error("template {template:?} gives {name:?}: {reason}")]
    Materialized {
        /// The template.
        template: String,
        /// The materialized name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// More SANs than a certificate can carry.
    #[error("{count} SANs after expansion; a certificate carries at most {MAX_SANS}")]
    TooMany {
        /// Number of distinct SANs.
        count: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(zones: &[&str]) -> PoolTemplateValues {
        PoolTemplateValues {
            cloud: "aws".into(),
            region: "us-east-1".into(),
            network_id: Some("n-abc123".into()),
            zones: zones.iter().map(|z| (*z).to_owned()).collect(),
        }
    }

    fn scheme(t: &[&str]) -> Result<Scheme, SchemeError> {
        Scheme::parse("s", &t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn zones_expand_one_san_each_and_duplicates_go() {
        let s = scheme(&[
            "*.{region}.{cloud}.example.net",
            "*.{zone}.{region}.{cloud}.example.net",
            "*.{region}.{cloud}.example.net",
        ])
        .expect("parse");
        let sans = s.materialize(&values(&["use1-az1", "use1-az2"])).expect("materialize");
        assert_eq!(
            sans,
            vec![
                "*.us-east-1.aws.example.net",
                "*.use1-az1.us-east-1.aws.example.net",
                "*.use1-az2.us-east-1.aws.example.net",
            ]
        );
    }

    #[test]
    fn network_id_binds() {
        let s = scheme(&["*.{network_id}.{region}.{cloud}.example.net"]).expect("parse");
        assert_eq!(
            s.materialize(&values(&[])).expect("ok"),
            vec!["*.n-abc123.us-east-1.aws.example.net"]
        );
    }

    #[test]
    fn unbound_and_unknown_placeholders_are_named() {
        let s = scheme(&["{zone}.{region}.example.net"]).expect("parse");
        let e = s.materialize(&values(&[])).expect_err("unbound").to_string();
        assert!(e.contains("{zone}") && e.contains("{zone}.{region}.example.net"), "{e}");
        let e = scheme(&["{cluster}.example.net"]).expect_err("unknown").to_string();
        assert!(e.contains("unknown placeholder {cluster}"), "{e}");
        let mut v = values(&[]);
        v.network_id = None;
        let s = scheme(&["{network_id}.example.net"]).expect("parse");
        assert!(
            s.materialize(&v)
                .expect_err("unbound")
                .to_string()
                .contains("{network_id}")
        );
    }

    #[test]
    fn wildcards_only_leftmost_and_whole() {
        for bad in ["a.*.example.net", "x*.example.net", "*.net"] {
            let s = scheme(&[bad]).expect("parse");
            let e = s.materialize(&values(&[])).expect_err(bad).to_string();
            assert!(e.contains("wildcard"), "{bad}: {e}");
        }
    }

    #[test]
    fn rfc1123_labels() {
        for (bad, why) in [
            ("-a.example.net", "start or end"),
            ("a_b.example.net", "'_'"),
            ("a..example.net", "empty label"),
            ("localhost", "two labels"),
        ] {
            let e = validate_name(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
        let long = format!("{}.example.net", "a".repeat(64));
        assert!(validate_name(&long).expect_err("long").contains("63"));
        assert!(validate_name("Ab-1.example.net").is_ok());
    }

    #[test]
    fn malformed_templates() {
        assert!(
            scheme(&["{region.example.net"])
                .expect_err("open")
                .to_string()
                .contains("unclosed")
        );
        assert!(
            scheme(&["region}.example.net"])
                .expect_err("close")
                .to_string()
                .contains("unmatched")
        );
        assert_eq!(scheme(&[]).expect_err("empty"), SchemeError::Empty);
    }

    #[test]
    fn too_many_sans() {
        let zones: Vec<String> = (0..101).map(|i| format!("z{i}")).collect();
        let s = scheme(&["{zone}.example.net"]).expect("parse");
        let mut v = values(&[]);
        v.zones = zones;
        assert_eq!(
            s.materialize(&v).expect_err("too many"),
            SchemeError::TooMany { count: 101 }
        );
    }

    #[test]
    fn values_are_lowercased() {
        let s = scheme(&["{region}.example.net"]).expect("parse");
        let mut v = values(&[]);
        v.region = "US-East-1".into();
        assert_eq!(s.materialize(&v).expect("ok"), vec!["us-east-1.example.net"]);
    }
}
