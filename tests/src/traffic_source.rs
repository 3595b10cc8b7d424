//! A local HTTP server standing in for a traffic source's postback endpoint: it records every
//! request (path, query, `Idempotency-Key`) and answers with the status a test chooses per path
//! and per request number.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Router;

/// One request the traffic source received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub idempotency_key: String,
}

/// Chooses the answer to the `nth` (0-based) request on `path`.
pub type Answer = fn(path: &str, nth: usize) -> u16;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Answer,
}

/// The running server; stops when dropped.
pub struct TrafficSource {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TrafficSource {
    pub async fn start(answer: Answer) -> TrafficSource {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            seen: seen.clone(),
            answer,
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("traffic source listener");
        let addr = listener.local_addr().expect("traffic source address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TrafficSource { addr, seen, task }
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    /// Requests received on `path`.
    pub fn seen_on(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

impl Drop for TrafficSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Shared>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> (StatusCode, &'static str) {
    let path = uri.path().to_string();
    let nth = {
        let mut seen = shared.seen.lock().expect("seen lock");
        let nth = seen.iter().filter(|s| s.path == path).count();
        seen.push(Seen {
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        });
        nth
    };
    let status = StatusCode::from_u16((shared.answer)(&path, nth)).expect("valid status");
    let body = if status.is_success() {
        "ok\n"
    } else {
        "traffic source says no\n"
    };
    (status, body)
}
