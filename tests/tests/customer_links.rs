//! The customer link store against moto: a link item is its pair's lock, the lock comes with the
//! pair's state, saving the state releases it, and every write is fenced by the lock's token.

use puente_tests::aws_local::{self, Aws};
use shared::aws::customer_links::DynamoCustomerLinks;
use shared::connectors::{hubspot, odoo};
use shared::error::StoreError;
use shared::mapping::ownership::Role;
use shared::ports::{CustomerLink, CustomerLinks, LinkLock};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(60);

async fn store() -> anyhow::Result<(Aws, DynamoCustomerLinks, String)> {
    let aws = Aws::from_env().await?;
    let table = format!("t-links-{}", uuid::Uuid::new_v4().simple());
    aws_local::create_table(&aws, &table).await?;
    let links = DynamoCustomerLinks::new(&aws.sdk, &table, hubspot::SYSTEM, odoo::SYSTEM);
    Ok((aws, links, table))
}

fn pair(crm_id: &str, erp_id: &str) -> CustomerLink {
    CustomerLink {
        crm_id: crm_id.into(),
        erp_id: erp_id.into(),
        window_writes: 3,
        ..CustomerLink::default()
    }
}

#[tokio::test]
async fn an_unlinked_record_s_lock_is_exclusive_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let (aws, links, table) = store().await?;
    let first = links.lock(Role::Crm, "901", LEASE).await?.expect("free");
    assert_eq!((first.link.as_ref(), first.lock.kept), (None, false));
    let held_for = links
        .lock(Role::Crm, "901", LEASE)
        .await?
        .expect_err("held");
    assert!(held_for > Duration::from_secs(50), "{held_for:?}");
    assert_eq!(
        links.find_link(Role::Crm, "901").await?,
        None,
        "a lock alone is no link"
    );

    // A stale holder's unlock does nothing; the holder's removes the item.
    let stale = LinkLock {
        token: "not-the-holder".into(),
        ..first.lock.clone()
    };
    links.unlock(&stale).await?;
    assert!(links.lock(Role::Crm, "901", LEASE).await?.is_err());
    links.unlock(&first.lock).await?;
    assert!(aws_local::items(&aws, &table).await?.is_empty());

    // A lock whose holder died is taken over once its lease ran out.
    links
        .lock(Role::Erp, "77", Duration::ZERO)
        .await?
        .expect("free");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    links
        .lock(Role::Erp, "77", LEASE)
        .await?
        .expect("an expired lock is taken over");
    Ok(())
}

#[tokio::test]
async fn saving_under_the_lock_unlocks_and_the_next_lock_returns_the_pair() -> anyhow::Result<()> {
    let (aws, links, table) = store().await?;
    let crm = links.lock(Role::Crm, "901", LEASE).await?.expect("free");
    let erp = links.lock(Role::Erp, "77", LEASE).await?.expect("free");
    let link = pair("901", "77");
    links.save_link(&link, true, &[crm.lock, erp.lock]).await?;
    let items = aws_local::items(&aws, &table).await?;
    assert_eq!(items.len(), 2, "the pair's state and the pointer");
    assert!(
        items.iter().all(|item| !item.contains_key("lease_token")),
        "the save released both locks: {items:?}"
    );

    let again = links.lock(Role::Crm, "901", LEASE).await?.expect("free");
    assert_eq!(
        again.link.as_ref(),
        Some(&link),
        "the lock returns the state"
    );
    assert!(again.lock.kept);
    let pointer = links.lock(Role::Erp, "77", LEASE).await?.expect("free");
    assert_eq!(pointer.points_to.as_deref(), Some("901"));
    assert_eq!(links.linked_crm_id("77").await?.as_deref(), Some("901"));

    // Giving a linked item's lock back keeps the link.
    links.unlock(&again.lock).await?;
    links.unlock(&pointer.lock).await?;
    assert_eq!(links.find_link(Role::Erp, "77").await?, Some(link));
    assert!(
        aws_local::items(&aws, &table)
            .await?
            .iter()
            .all(|item| !item.contains_key("lease_token"))
    );
    Ok(())
}

#[tokio::test]
async fn a_save_never_writes_over_another_change_s_lock() -> anyhow::Result<()> {
    let (_aws, links, _table) = store().await?;
    let theirs = links.lock(Role::Crm, "901", LEASE).await?.expect("free");
    let without_lock = links.save_link(&pair("901", "77"), false, &[]).await;
    assert!(
        matches!(without_lock, Err(StoreError::LeaseLost { .. })),
        "{without_lock:?}"
    );
    let stale = LinkLock {
        token: "not-the-holder".into(),
        ..theirs.lock.clone()
    };
    let with_a_stale_lock = links.save_link(&pair("901", "77"), false, &[stale]).await;
    assert!(
        matches!(with_a_stale_lock, Err(StoreError::LeaseLost { .. })),
        "{with_a_stale_lock:?}"
    );
    assert_eq!(
        links.find_link(Role::Crm, "901").await?,
        None,
        "nothing written"
    );

    // Once the holder gave it back, a write without a lock goes through.
    links.unlock(&theirs.lock).await?;
    links.save_link(&pair("901", "77"), false, &[]).await?;
    assert_eq!(
        links.find_link(Role::Crm, "901").await?,
        Some(pair("901", "77"))
    );
    Ok(())
}
