//! The HubSpot and Odoo connectors against their simulators over HTTP: the answers each system
//! really gives are classified into what the worker must do (retry, reject, fix credentials).

use puente_tests::sim::faults::Fault;
use puente_tests::sim::hubspot::HubSpotSim;
use puente_tests::sim::odoo::OdooSim;
use shared::config::{HubSpotConfig, OdooConfig};
use shared::connectors::http::client;
use shared::connectors::hubspot::HubSpot;
use shared::connectors::odoo::Odoo;
use shared::domain::{Address, Country, Customer, CustomerKind, TaxId};
use shared::error::ConnectorError;
use shared::ports::{CustomerSink, CustomerSource};
use std::time::Duration;

async fn odoo(api_key: &str) -> anyhow::Result<(OdooSim, Odoo)> {
    let sim = OdooSim::start("acme", "sync@acme.co", "right-key").await?;
    let config = OdooConfig {
        url: sim.url(),
        database: "acme".into(),
        username: "sync@acme.co".into(),
    };
    let connector = Odoo::new(
        client(Duration::from_secs(2), &Default::default())?,
        config,
        api_key.into(),
    );
    Ok((sim, connector))
}

async fn hubspot(token: &str) -> anyhow::Result<(HubSpotSim, HubSpot)> {
    let sim = HubSpotSim::start("right-token", "secret").await?;
    let config = HubSpotConfig {
        base_url: sim.base_url(),
        tax_id_property: "nit".into(),
        email_property: "email".into(),
        erp_ref_property: "puente_erp_ref".into(),
        credit_limit_property: "puente_credit_limit".into(),
        payment_terms_property: "puente_payment_terms".into(),
    };
    Ok((
        sim.clone(),
        HubSpot::new(
            client(Duration::from_secs(2), &Default::default())?,
            config,
            token.into(),
        ),
    ))
}

fn customer() -> Customer {
    Customer {
        kind: CustomerKind::Company,
        name: "Distribuidora Andina SAS".into(),
        tax_id: TaxId::parse("900123456-8", Some(Country::CO)).ok(),
        email: None,
        phone: None,
        address: Address {
            country: Some(Country::CO),
            ..Address::default()
        },
    }
}

#[tokio::test]
async fn odoo_refusing_the_api_key_is_a_credentials_error() -> anyhow::Result<()> {
    let (_sim, odoo) = odoo("wrong-key").await?;
    let err = odoo
        .find_customer("ref-1", &customer())
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ConnectorError::Unauthorized { .. }),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_odoo_validation_error_inside_http_200_is_a_rejection() -> anyhow::Result<()> {
    let (sim, odoo) = odoo("right-key").await?;
    sim.state.faults.inject(
        "res.partner.create",
        Fault::AppError {
            name: "odoo.exceptions.ValidationError".into(),
            message: "The VAT number does not seem to be valid.".into(),
        },
        1,
    );
    let err = odoo
        .create_customer(&customer(), "ref-2")
        .await
        .expect_err("rejected");
    assert!(matches!(err, ConnectorError::Rejected { .. }), "{err:?}");
    assert!(
        err.to_string().contains("does not seem to be valid"),
        "{err}"
    );
    assert!(sim.partners().is_empty());
    Ok(())
}

#[tokio::test]
async fn an_archived_partner_is_still_found_by_reference() -> anyhow::Result<()> {
    let (sim, odoo) = odoo("right-key").await?;
    let id: i64 = odoo.create_customer(&customer(), "ref-3").await?.parse()?;
    sim.archive(id);
    let found = odoo
        .find_customer("ref-3", &customer())
        .await?
        .expect("found");
    assert_eq!(found.id, id.to_string());
    assert!(found.matches, "same values: nothing to write");
    Ok(())
}

#[tokio::test]
async fn two_partners_with_our_reference_are_a_conflict_not_a_guess() -> anyhow::Result<()> {
    let (_sim, odoo) = odoo("right-key").await?;
    odoo.create_customer(&customer(), "ref-4").await?;
    odoo.create_customer(&customer(), "ref-4").await?;
    let err = odoo
        .find_customer("ref-4", &customer())
        .await
        .expect_err("ambiguous");
    assert!(err.to_string().contains("more than one partner"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_changed_value_is_detected_and_written() -> anyhow::Result<()> {
    let (sim, odoo) = odoo("right-key").await?;
    let id = odoo.create_customer(&customer(), "ref-5").await?;
    let renamed = Customer {
        name: "Andina Distribuciones SAS".into(),
        ..customer()
    };
    let found = odoo.find_customer("ref-5", &renamed).await?.expect("found");
    assert!(!found.matches);
    odoo.update_customer(&id, &renamed).await?;
    assert_eq!(sim.partners()[0]["name"], "Andina Distribuciones SAS");
    Ok(())
}

#[tokio::test]
async fn odoo_slower_than_the_client_timeout_is_unavailable() -> anyhow::Result<()> {
    let (sim, odoo) = odoo("right-key").await?;
    sim.state.faults.inject(
        "res.partner.search_read",
        Fault::DelayBefore(Duration::from_secs(3)),
        1,
    );
    let err = odoo
        .find_customer("ref-6", &customer())
        .await
        .expect_err("timed out");
    assert!(matches!(err, ConnectorError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    Ok(())
}

#[tokio::test]
async fn hubspot_answers_are_classified() -> anyhow::Result<()> {
    let (sim, crm) = hubspot("right-token").await?;
    sim.put_company("901", &[("name", "Andina"), ("nit", "900123456-8")]);
    let fields = crm.fetch_customer("901").await?;
    assert_eq!(fields.name.as_deref(), Some("Andina"));
    assert_eq!(fields.tax_id.as_deref(), Some("900123456-8"));
    assert_eq!(fields.email, None, "null property is no value");

    let missing = crm.fetch_customer("902").await.expect_err("missing");
    assert!(
        matches!(missing, ConnectorError::NotFound { .. }),
        "{missing:?}"
    );

    sim.state
        .faults
        .inject("GET /crm/v3/objects/companies", Fault::Status(502), 1);
    let down = crm.fetch_customer("901").await.expect_err("down");
    assert!(
        matches!(down, ConnectorError::Unavailable { .. }),
        "{down:?}"
    );

    sim.state.faults.inject(
        "GET /crm/v3/objects/companies",
        Fault::Throttle { retry_after_s: 7 },
        1,
    );
    let throttled = crm.fetch_customer("901").await.expect_err("throttled");
    assert!(
        matches!(throttled, ConnectorError::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{throttled:?}"
    );

    let injected = crm
        .fetch_customer("../contacts/1")
        .await
        .expect_err("not an id");
    assert!(
        matches!(injected, ConnectorError::Rejected { .. }),
        "{injected:?}"
    );

    let (_sim, wrong) = hubspot("wrong-token").await?;
    let refused = wrong.fetch_customer("901").await.expect_err("refused");
    assert!(
        matches!(refused, ConnectorError::Unauthorized { .. }),
        "{refused:?}"
    );
    Ok(())
}
