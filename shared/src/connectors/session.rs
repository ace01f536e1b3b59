//! Login sessions shared by every record a process handles (Odoo's `session_id` cookie, SAP B1's
//! `B1SESSION`): one login serves all callers until the system says the session ran out; then
//! one caller logs in again, the others reuse its session, and each repeats its call once. A
//! session that runs out again right away is returned as `SessionExpired`, for the SQS retry.

use crate::error::ConnectorError;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::RwLock;

pub struct SessionCache<S> {
    current: RwLock<Option<Arc<S>>>,
}

impl<S> std::fmt::Debug for SessionCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session itself is a credential: only whether there is one.
        let logged_in = self.current.try_read().map(|s| s.is_some()).ok();
        f.debug_struct("SessionCache")
            .field("logged_in", &logged_in)
            .finish()
    }
}

impl<S> Default for SessionCache<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> SessionCache<S> {
    pub fn new() -> Self {
        Self {
            current: RwLock::new(None),
        }
    }

    /// Runs `call` with the current session, logging in first if there is none. When `call`
    /// answers `SessionExpired`, the session is replaced once (by `login`, unless a concurrent
    /// caller already replaced it) and `call` runs once more; its answer is returned as is.
    pub async fn call<T, L, LF, C, CF>(&self, login: L, call: C) -> Result<T, ConnectorError>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<S, ConnectorError>>,
        C: Fn(Arc<S>) -> CF,
        CF: Future<Output = Result<T, ConnectorError>>,
    {
        let session = self.session(&login).await?;
        match call(session.clone()).await {
            Err(ConnectorError::SessionExpired { system }) => {
                tracing::info!(%system, "session expired; logging in again");
                let renewed = self.renew(&session, &login).await?;
                call(renewed).await
            }
            answer => answer,
        }
    }

    async fn session<L, LF>(&self, login: &L) -> Result<Arc<S>, ConnectorError>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<S, ConnectorError>>,
    {
        if let Some(session) = self.current.read().await.as_ref() {
            return Ok(session.clone());
        }
        let mut slot = self.current.write().await;
        // Callers that queued behind the first login take its session instead of logging in.
        if let Some(session) = slot.as_ref() {
            return Ok(session.clone());
        }
        let session = Arc::new(login().await?);
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Replaces `stale` with a new session, unless another caller already has: the write lock
    /// is held during the login, so callers whose session expired at the same time wait for
    /// one login and share it.
    async fn renew<L, LF>(&self, stale: &Arc<S>, login: &L) -> Result<Arc<S>, ConnectorError>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<S, ConnectorError>>,
    {
        let mut slot = self.current.write().await;
        if let Some(current) = slot.as_ref()
            && !Arc::ptr_eq(current, stale)
        {
            return Ok(current.clone());
        }
        *slot = None;
        let session = Arc::new(login().await?);
        *slot = Some(session.clone());
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::System;
    use futures_util::future::join_all;
    use std::sync::atomic::{AtomicU32, Ordering};

    const SYSTEM: System = System::named("fake");

    /// A system whose sessions are numbered by login; sessions below `valid_from` are expired.
    #[derive(Default)]
    struct Fake {
        logins: AtomicU32,
        valid_from: AtomicU32,
        calls: AtomicU32,
    }

    impl Fake {
        async fn login(&self) -> Result<u32, ConnectorError> {
            // Yield so concurrent callers really overlap the login.
            tokio::task::yield_now().await;
            Ok(self.logins.fetch_add(1, Ordering::SeqCst) + 1)
        }

        async fn call(&self, session: Arc<u32>) -> Result<u32, ConnectorError> {
            tokio::task::yield_now().await;
            self.calls.fetch_add(1, Ordering::SeqCst);
            if *session < self.valid_from.load(Ordering::SeqCst) {
                Err(ConnectorError::SessionExpired { system: SYSTEM })
            } else {
                Ok(*session)
            }
        }

        /// Server-side expiry of every session issued so far.
        fn expire(&self) {
            self.valid_from
                .store(self.logins.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn one_login_serves_many_calls() {
        let fake = Fake::default();
        let cache = SessionCache::new();
        for _ in 0..3 {
            let used = cache
                .call(|| fake.login(), |s| fake.call(s))
                .await
                .expect("valid session");
            assert_eq!(used, 1);
        }
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_expired_session_is_replaced_once_and_the_call_repeated() {
        let fake = Fake::default();
        let cache = SessionCache::new();
        cache
            .call(|| fake.login(), |s| fake.call(s))
            .await
            .expect("first login");
        fake.expire();
        let used = cache
            .call(|| fake.login(), |s| fake.call(s))
            .await
            .expect("re-login");
        assert_eq!(used, 2);
        assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_callers_after_an_expiry_share_one_login() {
        let fake = Fake::default();
        let cache = SessionCache::new();
        // Ten callers at once on an empty cache: one login.
        let first = join_all((0..10).map(|_| cache.call(|| fake.login(), |s| fake.call(s)))).await;
        assert!(first.iter().all(|r| matches!(r, Ok(1))), "{first:?}");
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1);

        fake.expire();
        let after = join_all((0..10).map(|_| cache.call(|| fake.login(), |s| fake.call(s)))).await;
        assert!(after.iter().all(|r| matches!(r, Ok(2))), "{after:?}");
        assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_session_that_expires_again_is_returned_after_one_login() {
        let fake = Fake::default();
        let cache = SessionCache::new();
        cache
            .call(|| fake.login(), |s| fake.call(s))
            .await
            .expect("first login");
        // Every session, including the next one, is expired.
        fake.valid_from.store(u32::MAX, Ordering::SeqCst);
        let err = cache
            .call(|| fake.login(), |s| fake.call(s))
            .await
            .expect_err("expired twice");
        assert!(
            matches!(err, ConnectorError::SessionExpired { .. }),
            "{err:?}"
        );
        assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_login_is_returned_and_not_kept() {
        let fake = Fake::default();
        let cache: SessionCache<u32> = SessionCache::new();
        let refused = || async {
            Err(ConnectorError::Unauthorized {
                system: SYSTEM,
                detail: "wrong password".into(),
            })
        };
        let err = cache
            .call(refused, |s| fake.call(s))
            .await
            .expect_err("refused");
        assert!(
            matches!(err, ConnectorError::Unauthorized { .. }),
            "{err:?}"
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
        let used = cache
            .call(|| fake.login(), |s| fake.call(s))
            .await
            .expect("login works again");
        assert_eq!(used, 1);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let fake = Fake::default();
        let cache = SessionCache::new();
        let err = cache
            .call(
                || fake.login(),
                |_| async {
                    fake.calls.fetch_add(1, Ordering::SeqCst);
                    Err::<u32, _>(ConnectorError::Unavailable {
                        system: SYSTEM,
                        detail: "down".into(),
                        source: None,
                    })
                },
            )
            .await
            .expect_err("down");
        assert!(matches!(err, ConnectorError::Unavailable { .. }), "{err:?}");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
    }
}
