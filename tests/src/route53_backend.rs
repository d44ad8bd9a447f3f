//! moto's Route 53 as a [`DnsBackend`](crate::dns_suite::DnsBackend), read and written with the
//! admin key through the plain SDK (not through certpool's `route53` provider).

use crate::dns_suite::DnsBackend;
use crate::moto::MotoServer;
use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};

/// Route 53 on moto, one hosted zone.
#[derive(Debug, Clone)]
pub struct Route53Backend {
    /// Admin client.
    pub client: aws_sdk_route53::Client,
    /// Hosted zone id.
    pub zone_id: String,
}

impl Route53Backend {
    /// For the hosted zone `zone_id` of `moto`.
    pub async fn new(moto: &MotoServer, zone_id: &str) -> Self {
        Self {
            client: moto.route53_admin().await,
            zone_id: zone_id.to_owned(),
        }
    }

    /// The TXT set at `name` as stored: TTL and raw (quoted) values.
    pub async fn raw_set(&self, name: &str) -> Result<Option<(i64, Vec<String>)>> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .start_record_name(&fqdn)
            .start_record_type(RrType::Txt)
            .max_items(1)
            .send()
            .await
            .context("ListResourceRecordSets")?;
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|s| s.name().eq_ignore_ascii_case(&fqdn) && *s.r#type() == RrType::Txt)
            .map(|s| {
                (
                    s.ttl().unwrap_or(0),
                    s.resource_records().iter().map(|r| r.value().to_owned()).collect(),
                )
            }))
    }
}

#[async_trait]
impl DnsBackend for Route53Backend {
    async fn read_txt(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .raw_set(name)
            .await?
            .map(|(_, v)| v.iter().map(|x| x.trim_matches('"').to_owned()).collect())
            .unwrap_or_default())
    }

    async fn add_foreign(&self, name: &str, value: &str) -> Result<()> {
        let mut values = self.raw_set(name).await?.map(|(_, v)| v).unwrap_or_default();
        values.push(format!("\"{value}\""));
        let mut set = ResourceRecordSet::builder()
            .name(format!("{}.", name.trim_end_matches('.')))
            .r#type(RrType::Txt)
            .ttl(300);
        for v in values {
            set = set.resource_records(ResourceRecord::builder().value(v).build()?);
        }
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(set.build()?)
            .build()?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(ChangeBatch::builder().changes(change).build()?)
            .send()
            .await
            .context("ChangeResourceRecordSets")?;
        Ok(())
    }
}
