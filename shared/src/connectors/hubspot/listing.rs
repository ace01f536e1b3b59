//! HubSpot companies read in bulk for the reconciler: the companies written since a position
//! (CRM search on `hs_lastmodifieddate`, oldest first) and companies by id (batch read).

use super::SYSTEM;
use super::client::HubSpot;
use super::wire::{BatchResponse, CrmObject, Page, company_read_properties};
use crate::connectors::http::transport_error;
use crate::domain::Rejection;
use crate::error::ConnectorError;
use crate::ports::{CustomerListing, CustomerRecord, Listed, Written};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// HubSpot's limit of inputs per batch call, and the page size its search allows.
const BATCH_LIMIT: usize = 100;

impl HubSpot {
    /// POSTs `body` to `path` and reads the JSON answer; a non-2xx answer is HubSpot's error.
    pub(super) async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ConnectorError> {
        let response = self
            .http
            .post(format!("{}{path}", self.config.base_url))
            .bearer_auth(&self.access_token)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(SYSTEM, e))?;
        if !response.status().is_success() {
            return Err(super::error::from_response(response).await);
        }
        response
            .json()
            .await
            .map_err(|e| transport_error(SYSTEM, e))
    }

    /// A company as a listing returns it. Without a parseable `hs_lastmodifieddate` it has no
    /// place in a changed-since listing: that is HubSpot breaking its contract, not bad data.
    fn listed(&self, company: CrmObject) -> Result<Listed, ConnectorError> {
        let modified = company
            .modified()
            .map_err(|e| ConnectorError::Unavailable {
                system: SYSTEM,
                detail: format!("company {}: {e}", company.id),
                source: None,
            })?;
        let written = Written {
            id: company.id.clone(),
            at: modified,
        };
        Ok(Listed {
            written,
            record: Ok::<_, Rejection>(CustomerRecord {
                fields: company.company_fields(&self.config),
                id: company.id,
                modified,
                syncs: true,
            }),
        })
    }
}

/// Whether `listed` comes after `after` in (last write, id) order; ids compare as numbers.
fn is_after(listed: &Listed, after: &Written) -> bool {
    position(listed) > (after.at.epoch_millis(), number(&after.id))
}

fn number(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

fn position(listed: &Listed) -> (i64, u64) {
    (listed.written.at.epoch_millis(), number(&listed.written.id))
}

/// A `hs_lastmodifieddate` filter on epoch milliseconds.
fn modified(operator: &str, at_ms: i64) -> Value {
    json!({
        "propertyName": "hs_lastmodifieddate",
        "operator": operator,
        "value": at_ms.to_string(),
    })
}

impl HubSpot {
    /// One search page of companies matching `filter`, oldest first, sorted by (last write, id)
    /// here (HubSpot orders records of one instant as it likes); and whether more match.
    async fn search_page(
        &self,
        filter: Value,
        limit: usize,
        page_after: Option<&str>,
    ) -> Result<(Vec<Listed>, Option<String>), ConnectorError> {
        let mut body = json!({
            "filterGroups": [{"filters": [filter]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": company_read_properties(&self.config),
            "limit": limit,
        });
        if let Some(page_after) = page_after {
            body["after"] = json!(page_after);
        }
        let page: Page<CrmObject> = self
            .post_json("/crm/v3/objects/companies/search", &body)
            .await?;
        let next = page.next_after().map(str::to_owned);
        let mut listed = page
            .results
            .into_iter()
            .map(|company| self.listed(company))
            .collect::<Result<Vec<_>, _>>()?;
        listed.sort_by_key(position);
        Ok((listed, next))
    }

    /// Every company last written at exactly `at_ms`, by id.
    async fn instant(&self, at_ms: i64) -> Result<Vec<Listed>, ConnectorError> {
        let mut all = Vec::new();
        let mut page_after = None;
        loop {
            let (page, next) = self
                .search_page(modified("EQ", at_ms), BATCH_LIMIT, page_after.as_deref())
                .await?;
            all.extend(page);
            match next {
                Some(next) => page_after = Some(next),
                None => break,
            }
        }
        all.sort_by_key(position);
        Ok(all)
    }
}

impl CustomerListing for HubSpot {
    /// Searches from `after`'s instant. A page that does not reach the end may hold only part
    /// of the companies written at its last instant, in any order: it is cut before that
    /// instant, and when nothing is left before it, that instant is read whole (more than
    /// `limit` then, if that many were written in one millisecond). So no company is skipped
    /// and none is listed twice.
    async fn list_changed(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<Listed>, ConnectorError> {
        let limit = limit.clamp(1, BATCH_LIMIT);
        let mut filter = modified("GTE", after.at.epoch_millis());
        loop {
            let (page, more) = self.search_page(filter, limit, None).await?;
            let Some(last_ms) = page.last().map(|l| l.written.at.epoch_millis()) else {
                return Ok(page);
            };
            if more.is_none() {
                return Ok(page.into_iter().filter(|l| is_after(l, after)).collect());
            }
            let before_last: Vec<Listed> = page
                .into_iter()
                .filter(|l| l.written.at.epoch_millis() < last_ms && is_after(l, after))
                .collect();
            if !before_last.is_empty() {
                return Ok(before_last);
            }
            let instant: Vec<Listed> = self
                .instant(last_ms)
                .await?
                .into_iter()
                .filter(|l| is_after(l, after))
                .collect();
            if !instant.is_empty() {
                return Ok(instant);
            }
            // Everything up to that instant was listed before: look beyond it.
            filter = modified("GT", last_ms);
        }
    }

    async fn read_many(&self, ids: &[String]) -> Result<Vec<Listed>, ConnectorError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_LIMIT) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({ "id": id })).collect();
            let body = json!({
                "properties": company_read_properties(&self.config),
                "inputs": inputs,
            });
            // Ids HubSpot no longer has come back as errors of a 207: left out, as asked.
            let batch: BatchResponse<CrmObject> = self
                .post_json("/crm/v3/objects/companies/batch/read", &body)
                .await?;
            for company in batch.results.into_iter().filter(|c| !c.archived) {
                found.push(self.listed(company)?);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn listed(id: &str, at_ms: i64) -> Listed {
        let at = Timestamp::from_epoch_millis(at_ms).expect("time");
        Listed {
            written: Written { id: id.into(), at },
            record: Err(Rejection(Vec::new())),
        }
    }

    #[test]
    fn a_listing_moves_past_what_it_already_listed() {
        let after = Written {
            id: "905".into(),
            at: Timestamp::from_epoch_millis(2_000).expect("time"),
        };
        assert!(!is_after(&listed("905", 2_000), &after));
        assert!(!is_after(&listed("1000", 1_999), &after));
        assert!(is_after(&listed("1000", 2_000), &after));
        assert!(is_after(&listed("12", 2_001), &after));
    }
}
