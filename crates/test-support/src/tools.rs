//! The real Prometheus and Alertmanager tools the tests drive (extracted
//! into `.local/tools` by scripts/bootstrap.sh), and serving an in-process
//! router on a loopback port so those tools can reach it.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

/// The repository root (this crate sits in `crates/test-support`).
pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The path of tool `name`: from the PATH, else `.local/tools`.
pub fn tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    let path = on_path.unwrap_or_else(|| root().join(".local/tools").join(name));
    assert!(
        path.is_file(),
        "{name} not found on the PATH or in .local/tools: run scripts/bootstrap.sh"
    );
    path
}

/// Serves `app` on a free loopback port until the test ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}
