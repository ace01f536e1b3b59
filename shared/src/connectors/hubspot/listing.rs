//! HubSpot companies and deals read in bulk for the reconciler: the records written since a
//! position (CRM search on `hs_lastmodifieddate`, oldest first) and records by id (batch read).

use super::SYSTEM;
use super::client::HubSpot;
use super::wire::{BatchResponse, CrmObject, Page, company_read_properties, deal_read_properties};
use crate::connectors::http::transport_error;
use crate::domain::{Rejection, System};
use crate::error::ConnectorError;
use crate::ports::{CustomerListing, CustomerRecord, DealListing, Listed, ListedDeal, Written};
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

    /// A company as a listing returns it.
    fn listed(&self, written: Written, company: CrmObject) -> Listed {
        Listed {
            record: Ok::<_, Rejection>(CustomerRecord {
                fields: company.company_fields(&self.config),
                id: company.id,
                modified: written.at,
                syncs: true,
            }),
            written,
        }
    }

    /// A deal as a listing returns it: its stage and what it shows of its invoice.
    fn listed_deal(&self, written: Written, deal: CrmObject) -> ListedDeal {
        ListedDeal {
            stage: deal
                .properties
                .get("dealstage")
                .cloned()
                .flatten()
                .unwrap_or_default(),
            shown: deal.shown_status(&self.deal_properties, &self.deal_rules),
            written,
        }
    }
}

/// An object's place in a changed-since listing. Without a parseable `hs_lastmodifieddate` it
/// has none: that is HubSpot breaking its contract, not bad data.
fn written(object: &CrmObject) -> Result<Written, ConnectorError> {
    let at = object.modified().map_err(|e| ConnectorError::Unavailable {
        system: SYSTEM,
        detail: format!("record {}: {e}", object.id),
        source: None,
    })?;
    Ok(Written {
        id: object.id.clone(),
        at,
    })
}

/// Whether `written` comes after `after` in (last write, id) order; ids compare as numbers.
fn is_after(written: &Written, after: &Written) -> bool {
    position(written) > position(after)
}

fn number(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

fn position(written: &Written) -> (i64, u64) {
    (written.at.epoch_millis(), number(&written.id))
}

/// A `hs_lastmodifieddate` filter on epoch milliseconds.
fn modified(operator: &str, at_ms: i64) -> Value {
    json!({
        "propertyName": "hs_lastmodifieddate",
        "operator": operator,
        "value": at_ms.to_string(),
    })
}

/// Objects with their places in a changed-since listing.
type Positioned = Vec<(Written, CrmObject)>;

impl HubSpot {
    /// One search page of `object_type` matching `filter`, oldest first, sorted by (last
    /// write, id) here (HubSpot orders records of one instant as it likes); and whether more
    /// match.
    async fn search_page(
        &self,
        object_type: &str,
        properties: &[&str],
        filter: Value,
        limit: usize,
        page_after: Option<&str>,
    ) -> Result<(Positioned, Option<String>), ConnectorError> {
        let mut body = json!({
            "filterGroups": [{"filters": [filter]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": properties,
            "limit": limit,
        });
        if let Some(page_after) = page_after {
            body["after"] = json!(page_after);
        }
        let page: Page<CrmObject> = self
            .post_json(&format!("/crm/v3/objects/{object_type}/search"), &body)
            .await?;
        let next = page.next_after().map(str::to_owned);
        let mut listed = page
            .results
            .into_iter()
            .map(|object| written(&object).map(|w| (w, object)))
            .collect::<Result<Vec<_>, _>>()?;
        listed.sort_by_key(|(w, _)| position(w));
        Ok((listed, next))
    }

    /// Every object of `object_type` last written at exactly `at_ms`, by id.
    async fn instant(
        &self,
        object_type: &str,
        properties: &[&str],
        at_ms: i64,
    ) -> Result<Positioned, ConnectorError> {
        let mut all = Vec::new();
        let mut page_after = None;
        loop {
            let (page, next) = self
                .search_page(
                    object_type,
                    properties,
                    modified("EQ", at_ms),
                    BATCH_LIMIT,
                    page_after.as_deref(),
                )
                .await?;
            all.extend(page);
            match next {
                Some(next) => page_after = Some(next),
                None => break,
            }
        }
        all.sort_by_key(|(w, _)| position(w));
        Ok(all)
    }

    /// Objects of `object_type` written after `after`, oldest first. Searches from `after`'s
    /// instant. A page that does not reach the end may hold only part of the objects written at
    /// its last instant, in any order: it is cut before that instant, and when nothing is left
    /// before it, that instant is read whole (more than `limit` then, if that many were written
    /// in one millisecond). So no object is skipped and none is listed twice.
    async fn changed_since(
        &self,
        object_type: &str,
        properties: &[&str],
        after: &Written,
        limit: usize,
    ) -> Result<Positioned, ConnectorError> {
        let limit = limit.clamp(1, BATCH_LIMIT);
        let mut filter = modified("GTE", after.at.epoch_millis());
        let later = |page: Positioned| -> Positioned {
            page.into_iter()
                .filter(|(w, _)| is_after(w, after))
                .collect()
        };
        loop {
            let (page, more) = self
                .search_page(object_type, properties, filter, limit, None)
                .await?;
            let Some(last_ms) = page.last().map(|(w, _)| w.at.epoch_millis()) else {
                return Ok(page);
            };
            if more.is_none() {
                return Ok(later(page));
            }
            let before_last = later(
                page.into_iter()
                    .filter(|(w, _)| w.at.epoch_millis() < last_ms)
                    .collect(),
            );
            if !before_last.is_empty() {
                return Ok(before_last);
            }
            let instant = later(self.instant(object_type, properties, last_ms).await?);
            if !instant.is_empty() {
                return Ok(instant);
            }
            // Everything up to that instant was listed before: look beyond it.
            filter = modified("GT", last_ms);
        }
    }

    /// The live objects of `object_type` with these ids, in batches of 100; ids HubSpot no
    /// longer has are left out.
    async fn read_batch(
        &self,
        object_type: &str,
        properties: &[&str],
        ids: &[String],
    ) -> Result<Positioned, ConnectorError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_LIMIT) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({ "id": id })).collect();
            let body = json!({ "properties": properties, "inputs": inputs });
            // Ids HubSpot no longer has come back as errors of a 207: left out, as asked.
            let batch: BatchResponse<CrmObject> = self
                .post_json(&format!("/crm/v3/objects/{object_type}/batch/read"), &body)
                .await?;
            for object in batch.results.into_iter().filter(|o| !o.archived) {
                found.push((written(&object)?, object));
            }
        }
        Ok(found)
    }
}

impl CustomerListing for HubSpot {
    async fn list_changed(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<Listed>, ConnectorError> {
        let properties = company_read_properties(&self.config);
        let found = self
            .changed_since("companies", &properties, after, limit)
            .await?;
        Ok(found.into_iter().map(|(w, c)| self.listed(w, c)).collect())
    }

    async fn read_many(&self, ids: &[String]) -> Result<Vec<Listed>, ConnectorError> {
        let properties = company_read_properties(&self.config);
        let found = self.read_batch("companies", &properties, ids).await?;
        Ok(found.into_iter().map(|(w, c)| self.listed(w, c)).collect())
    }
}

impl DealListing for HubSpot {
    fn system(&self) -> System {
        SYSTEM
    }

    async fn list_changed_deals(
        &self,
        after: &Written,
        limit: usize,
    ) -> Result<Vec<ListedDeal>, ConnectorError> {
        let properties = deal_read_properties(&self.deal_properties);
        let found = self
            .changed_since("deals", &properties, after, limit)
            .await?;
        Ok(found
            .into_iter()
            .map(|(w, d)| self.listed_deal(w, d))
            .collect())
    }

    async fn read_deals(&self, ids: &[String]) -> Result<Vec<ListedDeal>, ConnectorError> {
        let properties = deal_read_properties(&self.deal_properties);
        let found = self.read_batch("deals", &properties, ids).await?;
        Ok(found
            .into_iter()
            .map(|(w, d)| self.listed_deal(w, d))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn listed(id: &str, at_ms: i64) -> Written {
        let at = Timestamp::from_epoch_millis(at_ms).expect("time");
        Written { id: id.into(), at }
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
