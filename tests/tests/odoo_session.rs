//! The Odoo connector in session mode (`ODOO_AUTH=session`) against the simulator over HTTP:
//! one login serves every call, an expired session is renewed inline with one login however
//! many calls hit the expiry, and a session that expires again is handed to the SQS retry.

use futures_util::future::join_all;
use puente_tests::sim::faults::Fault;
use puente_tests::sim::odoo::OdooSim;
use shared::config::{OdooAuth, OdooConfig};
use shared::connectors::http::client;
use shared::connectors::odoo::Odoo;
use shared::domain::{Address, Country, Customer, CustomerKind, TaxId};
use shared::error::ConnectorError;
use shared::ports::CustomerSink;
use std::time::Duration;

const DATABASE: &str = "acme";
const LOGIN: &str = "sync@acme.co";
const KEY: &str = "right-key";

async fn sim() -> anyhow::Result<OdooSim> {
    Ok(OdooSim::start(DATABASE, LOGIN, KEY).await?)
}

fn connector(
    sim: &OdooSim,
    database: &str,
    password: &str,
    auth: OdooAuth,
) -> anyhow::Result<Odoo> {
    let config = OdooConfig {
        url: sim.url(),
        database: database.into(),
        username: LOGIN.into(),
    };
    Ok(Odoo::new(
        client(Duration::from_secs(2), &Default::default())?,
        config,
        password.into(),
    )
    .with_auth(auth))
}

async fn session_mode() -> anyhow::Result<(OdooSim, Odoo)> {
    let sim = sim().await?;
    let odoo = connector(&sim, DATABASE, KEY, OdooAuth::Session)?;
    Ok((sim, odoo))
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
async fn a_session_creates_and_finds_a_partner_with_one_login() -> anyhow::Result<()> {
    let (sim, odoo) = session_mode().await?;
    let id = odoo.create_customer(&customer(), "ref-1").await?;
    let partners = sim.partners();
    assert_eq!(partners.len(), 1);
    assert_eq!(partners[0]["id"].to_string(), id);
    assert_eq!(partners[0]["ref"], "ref-1");
    assert_eq!(partners[0]["country_id"], 49);

    let found = odoo
        .find_customer("ref-1", &customer())
        .await?
        .expect("found");
    assert_eq!(found.id, id);
    assert!(found.matches);
    assert_eq!(sim.logins(), 1);
    assert_eq!(
        sim.state.faults.count("common.authenticate"),
        0,
        "the session mode never uses /jsonrpc"
    );
    Ok(())
}

#[tokio::test]
async fn an_expired_session_is_renewed_with_exactly_one_more_login() -> anyhow::Result<()> {
    let (sim, odoo) = session_mode().await?;
    let id = odoo.create_customer(&customer(), "ref-2").await?;
    assert_eq!(sim.logins(), 1);

    sim.expire_sessions();
    let renamed = Customer {
        name: "Andina Distribuciones SAS".into(),
        ..customer()
    };
    odoo.update_customer(&id, &renamed).await?;
    assert_eq!(sim.partners()[0]["name"], "Andina Distribuciones SAS");
    assert_eq!(sim.logins(), 2);

    odoo.find_customer("ref-2", &renamed).await?.expect("found");
    assert_eq!(sim.logins(), 2, "the renewed session is kept");
    Ok(())
}

#[tokio::test]
async fn concurrent_calls_after_an_expiry_share_one_login() -> anyhow::Result<()> {
    let (sim, odoo) = session_mode().await?;
    odoo.create_customer(&customer(), "ref-3").await?;
    let searches_before = sim.state.faults.count("res.partner.search_read");

    sim.expire_sessions();
    let wanted = customer();
    let found = join_all((0..8).map(|_| odoo.find_customer("ref-3", &wanted))).await;
    for answer in &found {
        assert!(matches!(answer, Ok(Some(_))), "{answer:?}");
    }
    assert_eq!(sim.logins(), 2, "one re-login for all eight calls");
    // Each call ran at most twice: once with the expired session, once with the new one.
    let searches = sim.state.faults.count("res.partner.search_read") - searches_before;
    assert!((8..=16).contains(&searches), "{searches} searches");
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_or_database_are_credentials_errors() -> anyhow::Result<()> {
    let sim = sim().await?;
    for (database, password) in [(DATABASE, "wrong-key"), ("other-db", KEY)] {
        let odoo = connector(&sim, database, password, OdooAuth::Session)?;
        let err = odoo
            .create_customer(&customer(), "ref-4")
            .await
            .expect_err("refused");
        assert!(
            matches!(err, ConnectorError::Unauthorized { .. }),
            "{database}: {err:?}"
        );
        assert!(!err.to_string().contains(password), "{err}");
    }
    assert_eq!(sim.logins(), 0);
    assert!(sim.partners().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_session_that_expires_again_after_the_relogin_is_returned() -> anyhow::Result<()> {
    let (sim, odoo) = session_mode().await?;
    odoo.create_customer(&customer(), "ref-5").await?;
    assert_eq!(sim.logins(), 1);

    // Odoo's code-100 answer to this call and to its repetition after the re-login.
    sim.state.faults.inject(
        "res.partner.search_read",
        Fault::AppError {
            name: "odoo.http.SessionExpiredException".into(),
            message: "Session expired".into(),
        },
        2,
    );
    let searches_before = sim.state.faults.count("res.partner.search_read");
    let err = odoo
        .find_customer("ref-5", &customer())
        .await
        .expect_err("expired twice");
    assert!(
        matches!(err, ConnectorError::SessionExpired { .. }),
        "{err:?}"
    );
    assert_eq!(sim.logins(), 2, "exactly one re-login");
    assert_eq!(
        sim.state.faults.count("res.partner.search_read") - searches_before,
        2,
        "the call was repeated once, not looped"
    );

    // The SQS retry of the record finds the session the re-login opened.
    odoo.find_customer("ref-5", &customer())
        .await?
        .expect("found");
    assert_eq!(sim.logins(), 2);
    Ok(())
}

#[tokio::test]
async fn the_api_key_mode_stays_on_jsonrpc() -> anyhow::Result<()> {
    let sim = sim().await?;
    let odoo = connector(&sim, DATABASE, KEY, OdooAuth::ApiKey)?;
    let id = odoo.create_customer(&customer(), "ref-6").await?;
    odoo.find_customer("ref-6", &customer())
        .await?
        .expect("found");
    assert_eq!(sim.partners()[0]["id"].to_string(), id);
    assert_eq!(sim.logins(), 0, "no web session");
    assert_eq!(sim.state.faults.count("common.authenticate"), 1);
    Ok(())
}
