//! Simulators of the remote systems. Each is a real HTTP server on 127.0.0.1 with an
//! in-process handle for tests: seed records, inject faults, read what was written.

pub mod faults;
pub mod hubspot;
pub mod odoo;

use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Serves `app` on a free loopback port until the process ends.
pub async fn serve(app: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(addr)
}

/// Current UTC time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
