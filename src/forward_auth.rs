//! The forward-auth listener (docs/forward-auth.md): plain HTTP/1.1, private
//! to the front proxy, one decision per request (`pipeline::check`).

use crate::pipeline::check::handle_check;
use crate::state::GatewayState;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves checks until `shutdown` turns true. Connections are kept alive
/// for the front proxy's pool, with the main listener's header timeout.
pub async fn serve(
    listener: TcpListener,
    state: Arc<GatewayState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = crate::server::accept(&listener) => accepted,
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let header_read_timeout = state.snapshot.load().server.header_read_timeout;
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle_check(state, peer, req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
