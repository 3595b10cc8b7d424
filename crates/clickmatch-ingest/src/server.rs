//! The HTTP server loop. `axum::serve` sets no timer, so hyper's header read timeout never
//! fires there and a client that trickles its request head holds a connection forever; this
//! loop configures hyper itself: a request head must arrive within `header_read_timeout_ms`
//! (the connection is closed otherwise), and the read buffer is bounded so that an oversized
//! head gets 431 from hyper before the router sees it.

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use clickmatch_config::HttpLimits;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// How long a graceful shutdown waits for open requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// hyper refuses read buffers below this.
const MIN_BUF: usize = 8192;

/// Serves `router` on `listener` with `limits` until `shutdown` resolves, then drains open
/// connections (at most [`DRAIN_TIMEOUT`]). Handlers can extract `ConnectInfo<SocketAddr>`.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        // Request line and headers, with room for the router's own checks to answer 414/431
        // precisely below this.
        .max_buf_size((limits.max_uri_bytes + limits.max_header_bytes + 4096).max(MIN_BUF));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size((limits.max_uri_bytes + limits.max_header_bytes + 4096) as u32);
    let header_read_timeout = Duration::from_millis(limits.header_read_timeout_ms);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (builder, graceful_watch, router) =
            (builder.clone(), graceful.watcher(), router.clone());
        tokio::spawn(async move {
            // hyper's header read timeout starts with the first byte: a connection that never
            // sends one is closed after the same time.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_read_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let service =
                router
                    .clone()
                    .map_request(move |mut request: hyper::Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        request
                    });
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            if let Err(e) = graceful_watch.watch(connection).await {
                tracing::trace!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open HTTP connections did not finish within the drain timeout");
    }
    Ok(())
}
