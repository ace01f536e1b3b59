//! The chaos run's bookkeeping, kept apart from the driver (`src/bin/puente-chaos.rs`) so the
//! verdict can be unit tested: what was sent (companies, their versions, one business key per
//! change), what was observed afterwards (ledger statuses, dead letters, Odoo partners), and the
//! verdict drawn only from those observations: applied once, parked by reason, duplicates, lost.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Class shown for a dead letter that SQS moved itself after `maxReceiveCount` receives: the
/// runner never saw it fail for good, so it carries none of the runner's attributes.
pub const REDRIVEN_BY_SQS: &str = "max_receives(sqs-redrive)";

/// The DIAN check digit of a NIT's number (weights 3, 7, 13, ... from the rightmost digit).
pub fn nit_check_digit(number: u64) -> u64 {
    const WEIGHTS: [u64; 15] = [3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71];
    let mut rest = number;
    let mut sum = 0;
    for weight in WEIGHTS {
        if rest == 0 {
            break;
        }
        sum += (rest % 10) * weight;
        rest /= 10;
    }
    match sum % 11 {
        r @ (0 | 1) => r,
        r => 11 - r,
    }
}

/// The ledger's business key of a HubSpot company change.
pub fn business_key(company_id: u64, occurred_at_ms: i64) -> String {
    format!("customer#hubspot#{company_id}#{occurred_at_ms}")
}

/// Our reference on the Odoo partner of a HubSpot company.
pub fn partner_ref(company_id: u64) -> String {
    format!("hubspot-company-{company_id}")
}

/// One company in the HubSpot simulator and its history of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub id: u64,
    /// `123456789-0`, the check digit wrong on purpose when `valid_nit` is false.
    pub nit: String,
    pub valid_nit: bool,
    /// Incremented by every change; part of the name and email so a stale write shows.
    pub version: u32,
    /// Business keys of its changes, oldest first.
    pub keys: Vec<String>,
}

impl Company {
    pub fn new(id: u64, number: u64, valid_nit: bool) -> Self {
        let digit = nit_check_digit(number);
        let digit = if valid_nit { digit } else { (digit + 1) % 10 };
        Self {
            id,
            nit: format!("{number}-{digit}"),
            valid_nit,
            version: 0,
            keys: Vec::new(),
        }
    }

    /// The HubSpot properties of the current version.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", format!("Cliente {} v{} SAS", self.id, self.version)),
            ("nit", self.nit.clone()),
            (
                "email",
                format!("Compras.C{}.V{}@Example.co", self.id, self.version),
            ),
            ("country", "CO".into()),
        ]
    }

    /// The partner fields Odoo must hold once the current version is synced (the mapping trims
    /// the name and lowercases the email; the NIT keeps its `number-digit` form).
    pub fn expected_partner(&self) -> PartnerState {
        PartnerState {
            name: format!("Cliente {} v{} SAS", self.id, self.version),
            vat: self.nit.clone(),
            email: format!("compras.c{}.v{}@example.co", self.id, self.version),
        }
    }
}

/// The fields of a partner the verdict compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerState {
    pub name: String,
    pub vat: String,
    pub email: String,
}

/// A partner as read from the Odoo simulator.
#[derive(Debug, Clone)]
pub struct Partner {
    pub reference: String,
    pub state: PartnerState,
}

/// A message read from the dead-letter queue: its business key when the body is a change
/// event, and its error class.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub key: Option<String>,
    pub class: String,
}

/// Everything observed after the run.
#[derive(Debug, Default)]
pub struct Observed {
    /// Ledger status by business key.
    pub ledger: HashMap<String, String>,
    pub dead_letters: Vec<DeadLetter>,
    pub partners: Vec<Partner>,
}

/// The verdict drawn from what was sent and what was observed.
#[derive(Debug, Default)]
pub struct Verdict {
    pub events: usize,
    pub applied_once: usize,
    /// Distinct business keys dead-lettered, by error class (a key is counted under each class
    /// it was parked with).
    pub parked: BTreeMap<String, usize>,
    /// Dead letters that are not change events (expected: the poison messages sent).
    pub parked_without_key: BTreeMap<String, usize>,
    pub dead_letter_messages: usize,
    /// Partners beyond the first for one company reference.
    pub extra_partners: Vec<(String, usize)>,
    /// Keys both COMPLETED in the ledger and present in the dead-letter queue.
    pub completed_and_parked: Vec<(String, String)>,
    /// Keys neither COMPLETED nor dead-lettered, with their ledger status.
    pub lost_events: Vec<(String, String)>,
    /// Companies whose last change completed but whose partner differs from the last state.
    pub stale_companies: Vec<(u64, String)>,
    /// Keys of companies with a valid NIT parked for a reason the run did not provoke, or
    /// invalid-NIT keys parked for another reason than `invalid`.
    pub unexpected_parks: Vec<(String, String)>,
    /// Partners created for companies whose NIT is invalid.
    pub partners_for_invalid: usize,
}

impl Verdict {
    pub fn duplicates(&self) -> usize {
        self.extra_partners.iter().map(|(_, n)| n).sum::<usize>() + self.completed_and_parked.len()
    }

    pub fn lost(&self) -> usize {
        self.lost_events.len() + self.stale_companies.len()
    }
}

/// Classes a valid company's change may be parked with in this run: Odoo refusing a write
/// (injected), and SQS's own redrive after repeated failed receives.
const PROVOKED: [&str; 2] = ["target_rejected", REDRIVEN_BY_SQS];

/// Compares what was sent with what was observed.
pub fn judge(companies: &[Company], observed: &Observed) -> Verdict {
    let mut verdict = Verdict {
        dead_letter_messages: observed.dead_letters.len(),
        ..Verdict::default()
    };
    let mut parked_classes: HashMap<&str, HashSet<&str>> = HashMap::new();
    for dead in &observed.dead_letters {
        match &dead.key {
            Some(key) => {
                parked_classes
                    .entry(key.as_str())
                    .or_default()
                    .insert(dead.class.as_str());
            }
            None => {
                *verdict
                    .parked_without_key
                    .entry(dead.class.clone())
                    .or_default() += 1
            }
        }
    }
    let mut partners: HashMap<&str, Vec<&PartnerState>> = HashMap::new();
    for partner in &observed.partners {
        partners
            .entry(partner.reference.as_str())
            .or_default()
            .push(&partner.state);
    }
    for (reference, found) in &partners {
        if found.len() > 1 {
            verdict
                .extra_partners
                .push(((*reference).to_owned(), found.len() - 1));
        }
    }
    verdict.extra_partners.sort();

    for company in companies {
        let reference = partner_ref(company.id);
        if !company.valid_nit {
            verdict.partners_for_invalid += partners.get(reference.as_str()).map_or(0, Vec::len);
        }
        for key in &company.keys {
            verdict.events += 1;
            let status = observed
                .ledger
                .get(key)
                .map_or("(no ledger item)", String::as_str);
            let completed = status == "COMPLETED";
            let classes = parked_classes.get(key.as_str());
            if completed {
                verdict.applied_once += 1;
            }
            if let Some(classes) = classes {
                let mut sorted: Vec<&str> = classes.iter().copied().collect();
                sorted.sort_unstable();
                for class in &sorted {
                    *verdict.parked.entry((*class).to_owned()).or_default() += 1;
                    let expected = if company.valid_nit {
                        PROVOKED.contains(class)
                    } else {
                        *class == "invalid"
                    };
                    if !expected {
                        verdict
                            .unexpected_parks
                            .push((key.clone(), (*class).to_owned()));
                    }
                }
                if completed {
                    verdict
                        .completed_and_parked
                        .push((key.clone(), sorted.join("+")));
                }
            } else if !completed {
                verdict.lost_events.push((key.clone(), status.to_owned()));
            }
        }
        let last_completed = company
            .keys
            .last()
            .is_some_and(|key| observed.ledger.get(key).map(String::as_str) == Some("COMPLETED"));
        if company.valid_nit && last_completed {
            let expected = company.expected_partner();
            match partners.get(reference.as_str()).and_then(|p| p.first()) {
                Some(state) if **state == expected => {}
                Some(state) => verdict.stale_companies.push((
                    company.id,
                    format!(
                        "Odoo has {:?}, HubSpot's last is {:?}",
                        state.name, expected.name
                    ),
                )),
                None => verdict
                    .stale_companies
                    .push((company.id, "no Odoo partner".into())),
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_match_dian_vectors() {
        assert_eq!(nit_check_digit(900_123_456), 8);
        assert_eq!(nit_check_digit(800_197_268), 4);
        assert_eq!(nit_check_digit(860_002_964), 4);
    }

    #[test]
    fn an_invalid_company_gets_a_wrong_digit() {
        assert_eq!(Company::new(1, 900_123_456, true).nit, "900123456-8");
        assert_eq!(Company::new(1, 900_123_456, false).nit, "900123456-9");
    }

    fn company_with(keys: &[&str], valid: bool) -> Company {
        let mut c = Company::new(7, 900_123_456, valid);
        c.version = 2;
        c.keys = keys.iter().map(|k| (*k).to_owned()).collect();
        c
    }

    fn partner(c: &Company) -> Partner {
        Partner {
            reference: partner_ref(c.id),
            state: c.expected_partner(),
        }
    }

    fn ledger(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn completed_changes_with_one_current_partner_are_clean() {
        let c = company_with(&["a", "b"], true);
        let observed = Observed {
            ledger: ledger(&[("a", "COMPLETED"), ("b", "COMPLETED")]),
            partners: vec![partner(&c)],
            ..Observed::default()
        };
        let v = judge(&[c], &observed);
        assert_eq!(
            (v.events, v.applied_once, v.duplicates(), v.lost()),
            (2, 2, 0, 0)
        );
    }

    #[test]
    fn a_change_neither_completed_nor_parked_is_lost() {
        let c = company_with(&["a", "b"], true);
        let observed = Observed {
            ledger: ledger(&[("a", "COMPLETED"), ("b", "IN_PROGRESS")]),
            partners: vec![partner(&c)],
            ..Observed::default()
        };
        let v = judge(&[c], &observed);
        assert_eq!(v.lost_events, [("b".to_owned(), "IN_PROGRESS".to_owned())]);
        assert_eq!(v.lost(), 1);
    }

    #[test]
    fn a_stale_partner_after_the_last_completed_change_is_lost() {
        let c = company_with(&["a"], true);
        let mut old = partner(&c);
        old.state.name = "Cliente 7 v1 SAS".into();
        let observed = Observed {
            ledger: ledger(&[("a", "COMPLETED")]),
            partners: vec![old],
            ..Observed::default()
        };
        let v = judge(&[c], &observed);
        assert_eq!(v.stale_companies.len(), 1);
    }

    #[test]
    fn two_partners_or_a_completed_dead_letter_are_duplicates() {
        let c = company_with(&["a"], true);
        let observed = Observed {
            ledger: ledger(&[("a", "COMPLETED")]),
            partners: vec![partner(&c), partner(&c)],
            dead_letters: vec![DeadLetter {
                key: Some("a".into()),
                class: "target_rejected".into(),
            }],
        };
        let v = judge(&[c], &observed);
        assert_eq!(v.duplicates(), 2);
        assert_eq!(v.lost(), 0);
    }

    #[test]
    fn invalid_nits_must_park_as_invalid_and_poison_has_no_key() {
        let c = company_with(&["a", "b"], false);
        let observed = Observed {
            ledger: ledger(&[("a", "FAILED"), ("b", "FAILED")]),
            dead_letters: vec![
                DeadLetter {
                    key: Some("a".into()),
                    class: "invalid".into(),
                },
                DeadLetter {
                    key: Some("b".into()),
                    class: "target_rejected".into(),
                },
                DeadLetter {
                    key: None,
                    class: "poison".into(),
                },
            ],
            ..Observed::default()
        };
        let v = judge(&[c], &observed);
        assert_eq!(v.lost(), 0);
        assert_eq!(v.parked["invalid"], 1);
        assert_eq!(v.parked_without_key["poison"], 1);
        assert_eq!(
            v.unexpected_parks,
            [("b".to_owned(), "target_rejected".to_owned())]
        );
    }
}
