//! What the service tests share: models loaded once, servers on loopback, fresh galleries on
//! SQLite or PostgreSQL, and a small HTTP client.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use visage_face::FaceModels;
use visage_gallery::{GalleryDb, Scope};
use visage_server::{AppState, ServerConfig};

pub use visage_testdata::shared;

pub fn photo(name: &str) -> PathBuf {
    shared().join("golden/dlib/images").join(name)
}

pub fn models() -> Arc<FaceModels> {
    static MODELS: OnceLock<Arc<FaceModels>> = OnceLock::new();
    Arc::clone(MODELS.get_or_init(|| {
        Arc::new(FaceModels::load(&shared().join("models")).expect("face models in ../shared"))
    }))
}

/// Where a test's gallery lives.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    pub fn sqlite() -> Self {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh database on `VISAGE_TEST_POSTGRES`, or `None` with a note when it is unset. Set
    /// but unreachable is a failure, never a skip.
    pub fn postgres() -> Option<Self> {
        visage_testdata::postgres_database("visage_server").map(Backend::Postgres)
    }

    pub fn location(&self) -> String {
        match self {
            Backend::Sqlite(dir) => dir.path().join("gallery.sqlite").display().to_string(),
            Backend::Postgres(url) => url.clone(),
        }
    }

    pub fn open(&self) -> GalleryDb {
        GalleryDb::open(&self.location(), models().manifest_id()).expect("open the gallery")
    }

    /// A new key with `scopes`; returns its secret.
    pub fn key(&self, name: &str, scopes: &[Scope]) -> String {
        self.open().create_key(name, scopes).unwrap().secret
    }
}

/// A service on a loopback port, stopped when dropped.
pub struct Server {
    pub base: String,
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(backend: &Backend, config: ServerConfig) -> Self {
        let state = AppState::new(models(), backend.open(), config).expect("service state");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let serving = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready_tx.send(listener.local_addr().unwrap()).unwrap();
                visage_server::serve(listener, serving, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = ready_rx.recv().unwrap();
        Server {
            base: format!("http://{addr}"),
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {:?}", self.body))
            .to_string()
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// A multipart/form-data body.
#[derive(Default)]
pub struct Multipart {
    parts: Vec<u8>,
}

pub const BOUNDARY: &str = "visage-test-boundary-7d3f";

impl Multipart {
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
        self
    }

    pub fn bytes(mut self, name: &str, file: &str, bytes: &[u8]) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        self.parts.extend_from_slice(bytes);
        self.parts.extend_from_slice(b"\r\n");
        self
    }

    pub fn file(self, name: &str, photo_name: &str) -> Self {
        let bytes = std::fs::read(photo(photo_name)).expect("photo in ../shared");
        self.bytes(name, photo_name, &bytes)
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.parts
            .extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.parts
    }
}

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut r = r.expect("the service answers");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    Answer { status, body }
}

pub fn post_form(agent: &ureq::Agent, url: &str, key: Option<&str>, body: Multipart) -> Answer {
    let mut req = agent.post(url).header(
        "Content-Type",
        &format!("multipart/form-data; boundary={BOUNDARY}"),
    );
    if let Some(k) = key {
        req = req.header("Authorization", &format!("Bearer {k}"));
    }
    answer(req.send(&body.finish()[..]))
}

pub fn get(agent: &ureq::Agent, url: &str, key: Option<&str>) -> Answer {
    let mut req = agent.get(url);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    answer(req.call())
}

pub fn delete(agent: &ureq::Agent, url: &str, key: &str) -> Answer {
    answer(
        agent
            .delete(url)
            .header("Authorization", &format!("Bearer {key}"))
            .call(),
    )
}

pub fn patch_json(agent: &ureq::Agent, url: &str, key: &str, body: &str) -> Answer {
    answer(
        agent
            .patch(url)
            .header("Authorization", &format!("Bearer {key}"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes()),
    )
}

/// The answer of a request built by hand.
pub fn answer_of(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    answer(r)
}

/// Sends only the head of a request declaring a `length`-byte multipart body, and reads the
/// answer (a service refusing the size answers without waiting for the body).
pub fn declare_body(base: &str, path: &str, key: &str, length: usize) -> Answer {
    use std::io::Write;
    let (mut stream, addr) = connect(base);
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_answer(&mut stream)
}

/// Sends a multipart body of about `length` bytes in chunks, without declaring its length, and
/// reads the answer (write errors are ignored: a service refusing the size may close early).
pub fn chunked_body(base: &str, path: &str, key: &str, length: usize) -> Answer {
    use std::io::Write;
    let (mut stream, addr) = connect(base);
    let _ = write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.jpg\"\r\n\r\n"
    );
    let _ = write!(stream, "{:x}\r\n{head}\r\n", head.len());
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..length / chunk.len() {
        if write!(stream, "{:x}\r\n", chunk.len())
            .and_then(|()| stream.write_all(&chunk))
            .and_then(|()| stream.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    read_answer(&mut stream)
}

/// A raw connection to the service at `base` (`http://host:port`), answers awaited up to 30 s,
/// with its `host:port`.
fn connect(base: &str) -> (std::net::TcpStream, &str) {
    let addr = base.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(addr).expect("the service accepts a connection");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("a read timeout");
    (stream, addr)
}

/// Reads a raw HTTP/1.1 answer to its end (the request said `Connection: close`): its status
/// code and body.
fn read_answer(stream: &mut std::net::TcpStream) -> Answer {
    use std::io::Read;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Answer { status, body }
}
