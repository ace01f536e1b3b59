//! Odoo's automation-rule webhooks ("Send Webhook Notification", Odoo 17+, one rule on invoices and
//! one on partners): an unsigned JSON POST
//! of `{"_model", "_id", "_action", "id", ...the fields the rule selects}` when a record changes.
//! Odoo signs nothing and sends no custom header, so the rule's URL carries a shared token
//! (`/webhooks/odoo?token=...`; a proxy may send it as `X-Puente-Token` instead), at least 32
//! bytes, compared in constant time. The notice becomes a thin change event: the worker reads
//! the record's current state, so the payload's other fields are never trusted.

use super::SYSTEM;
use crate::domain::{ChangeEvent, Entity, Timestamp};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The header a proxy in front of Odoo may use instead of the URL's `token` parameter.
pub const TOKEN_HEADER: &str = "x-puente-token";
/// The shortest token accepted: 256 bits.
pub const MIN_TOKEN_BYTES: usize = 32;
/// The models whose changes puente follows: invoices (payment status) and partners (customers).
pub const INVOICE_MODEL: &str = "account.move";
pub const PARTNER_MODEL: &str = "res.partner";

/// The shared token, never shown in debug output.
pub struct WebhookToken(Vec<u8>);

impl std::fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookToken(..)")
    }
}

impl WebhookToken {
    /// A token of at least `MIN_TOKEN_BYTES`; a shorter one is refused, so a guessable token
    /// never protects the endpoint.
    pub fn new(token: String) -> Result<Self, String> {
        let token = token.trim().to_owned();
        if token.len() < MIN_TOKEN_BYTES {
            return Err(format!(
                "the Odoo webhook token has {} bytes; at least {MIN_TOKEN_BYTES} are required",
                token.len()
            ));
        }
        Ok(Self(token.into_bytes()))
    }

    /// Whether `presented` is the token, compared in constant time (only the length can leak,
    /// and every accepted token is at least 32 random bytes).
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.ct_eq(presented).into()
    }
}

/// The `token` parameter of a query string, as written (tokens are URL-safe characters).
pub fn token_from_query(query: &str) -> Option<&str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| value)
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "_model")]
    model: String,
    #[serde(rename = "_id")]
    id: u64,
    #[serde(default)]
    write_date: Option<serde_json::Value>,
}

/// What a notification asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An invoice changed: its thin change event.
    Invoice(ChangeEvent),
    /// A partner changed: its thin change event, for the customer flow.
    Customer(ChangeEvent),
    /// Another model's record: nothing to do.
    OtherModel(String),
}

/// The notification in `body` from the Odoo `database`, received at `received_ms`. The change's
/// time is the record's `write_date` when the rule sends it (so the webhook and the polling
/// fallback give the same business key for one change), else the time of receipt.
pub fn notice(body: &[u8], database: &str, received_ms: i64) -> Result<Notice, String> {
    let notification: Notification = serde_json::from_slice(body)
        .map_err(|e| format!("not an Odoo webhook notification: {e}"))?;
    let entity = match notification.model.as_str() {
        INVOICE_MODEL => Entity::Invoice,
        PARTNER_MODEL => Entity::Customer,
        _ => return Ok(Notice::OtherModel(notification.model)),
    };
    if notification.id == 0 {
        return Err("_id must be a record id".into());
    }
    let written = match &notification.write_date {
        Some(serde_json::Value::String(raw)) => Some(
            Timestamp::parse_naive_utc(raw)
                .map_err(|_| "write_date is not YYYY-MM-DD HH:MM:SS".to_owned())?
                .epoch_millis(),
        ),
        _ => None,
    };
    // An invoice's change is keyed by its write_date, so the webhook and the polling fallback
    // give one business key. Odoo keeps whole seconds, though, and a partner is often edited
    // twice in one second (our write, then an automated rule's): keyed by its second, the second
    // edit would pass for a duplicate of the first and be lost. A partner's notice is keyed by
    // its time of receipt instead; a polled partner the webhook already brought is read once
    // more and writes nothing.
    let occurred_at_ms = match entity {
        Entity::Customer => received_ms,
        _ => written.unwrap_or(received_ms),
    };
    let event = ChangeEvent {
        source: SYSTEM.name().to_owned(),
        entity,
        subscription_type: format!("{}.write", notification.model),
        object_id: notification.id.to_string(),
        event_id: format!("{}@{occurred_at_ms}", notification.id),
        account_id: database.to_owned(),
        occurred_at_ms,
        change_source: None,
        merged_ids: Vec::new(),
    };
    Ok(match entity {
        Entity::Customer => Notice::Customer(event),
        _ => Notice::Invoice(event),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "k3Jd9sLq0PzX7vN2mB5cR8tY1wE4uA6h";

    #[test]
    fn a_short_token_is_refused_and_the_right_one_matches() {
        assert!(WebhookToken::new("short".into()).is_err());
        let token = WebhookToken::new(TOKEN.into()).expect("32 bytes");
        assert!(token.matches(TOKEN.as_bytes()));
        assert!(!token.matches(b"k3Jd9sLq0PzX7vN2mB5cR8tY1wE4uA6i"));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "WebhookToken(..)");
    }

    #[test]
    fn the_token_is_read_from_the_query() {
        assert_eq!(token_from_query("a=1&token=abc&b=2"), Some("abc"));
        assert_eq!(token_from_query("tokens=abc"), None);
    }

    #[test]
    fn an_invoice_notification_becomes_an_event_at_its_write_date() {
        let body = br#"{"_model": "account.move", "_id": 318, "_action": "puente(#12)", "id": 318,
            "name": "INV/2026/00318", "payment_state": "partial", "write_date": "2026-03-14 16:02:11"}"#;
        let Ok(Notice::Invoice(event)) = notice(body, "acme", 1) else {
            panic!("an invoice notice")
        };
        assert_eq!(event.entity, Entity::Invoice);
        assert_eq!(event.object_id, "318");
        assert_eq!(event.account_id, "acme");
        assert_eq!(event.occurred_at_ms, 1_773_504_131_000);
        assert_eq!(
            event.business_key("payments").expect("key"),
            "payments#odoo#318#1773504131000"
        );
    }

    #[test]
    fn a_partner_notification_is_a_customer_change() {
        let body = br#"{"_model": "res.partner", "_id": 42, "_action": "puente partners(#13)",
            "id": 42, "name": "Andina", "write_date": "2026-03-14 16:02:11"}"#;
        let Ok(Notice::Customer(event)) = notice(body, "acme", 1_773_504_131_456) else {
            panic!("a customer notice")
        };
        assert_eq!(event.entity, Entity::Customer);
        assert_eq!(event.subscription_type, "res.partner.write");
        // Keyed by the receipt, not by the second Odoo wrote it in.
        assert_eq!(
            event.business_key("customer").expect("key"),
            "customer#odoo#42#1773504131456"
        );
    }

    #[test]
    fn other_models_are_not_ours_and_garbage_is_an_error() {
        let body = br#"{"_model": "product.product", "_id": 7}"#;
        assert_eq!(
            notice(body, "acme", 1),
            Ok(Notice::OtherModel("product.product".into()))
        );
        assert!(notice(b"[1,2]", "acme", 1).is_err());
        assert!(notice(br#"{"_model": "account.move", "_id": 0}"#, "acme", 1).is_err());
        let no_date = notice(br#"{"_model": "account.move", "_id": 9}"#, "acme", 55);
        assert!(matches!(no_date, Ok(Notice::Invoice(e)) if e.occurred_at_ms == 55));
    }
}
