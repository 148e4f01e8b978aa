//! Load test on loopback: the service in this process (a fresh SQLite gallery, or `--db URL`),
//! then
//! 1. `--clients` clients (default 16) identifying a photo for `--seconds` (default 60), while
//!    one more client enrolls a new person every `--enroll-every-ms` (default 1000): throughput,
//!    p50/p99 latency, errors (must be 0);
//! 2. overload: `--overload-clients` (default 64) for `--overload-seconds` (default 10) against
//!    a queue of `--queue` (default 16): answers must be 200 or 429, and the service must still
//!    be healthy afterwards;
//! 3. every person enrolled during the load must be listed.
//!
//! ```sh
//! VISAGE_SHARED=../shared cargo run --release -p visage-server --example load -- --seconds 60
//! ```
//! Bounded in time (about seconds + overload-seconds) and count; exits 1 when a check fails.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use visage_face::FaceModels;
use visage_gallery::{GalleryDb, Scope};
use visage_server::{AppState, ServerConfig};
use visage_testdata::shared;

struct Options {
    clients: usize,
    seconds: f64,
    overload_clients: usize,
    overload_seconds: f64,
    workers: usize,
    queue: usize,
    enroll_every_ms: u64,
    db: Option<String>,
    photo: String,
    enroll_photo: String,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        clients: 16,
        seconds: 60.0,
        overload_clients: 64,
        overload_seconds: 10.0,
        workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        queue: 16,
        enroll_every_ms: 1000,
        db: None,
        photo: "examples__obama-480p.jpg".into(),
        enroll_photo: "examples__biden.jpg".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--clients" => o.clients = num(&value)? as usize,
            "--seconds" => o.seconds = num(&value)?,
            "--overload-clients" => o.overload_clients = num(&value)? as usize,
            "--overload-seconds" => o.overload_seconds = num(&value)?,
            "--workers" => o.workers = num(&value)? as usize,
            "--queue" => o.queue = num(&value)? as usize,
            "--enroll-every-ms" => o.enroll_every_ms = num(&value)? as u64,
            "--db" => o.db = Some(value),
            "--photo" => o.photo = value,
            "--enroll-photo" => o.enroll_photo = value,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(o)
}

fn photo(name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.exists() {
        p
    } else {
        shared().join("golden/dlib/images").join(name)
    }
}

const BOUNDARY: &str = "visage-load-boundary";

fn form(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (name, file, bytes) in files {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// One request: (status, seconds), status 0 for a transport error.
fn post(agent: &ureq::Agent, url: &str, key: &str, body: &[u8]) -> (u16, f64) {
    let started = Instant::now();
    let r = agent
        .post(url)
        .header("Authorization", &format!("Bearer {key}"))
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .send(body);
    let status = match r {
        Ok(mut r) => {
            let _ = r.body_mut().read_to_vec();
            r.status().as_u16()
        }
        Err(_) => 0,
    };
    (status, started.elapsed().as_secs_f64())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// `clients` threads posting `body` to `url` until `seconds` pass: every (status, seconds).
fn hammer(clients: usize, seconds: f64, url: &str, key: &str, body: &[u8]) -> Vec<(u16, f64)> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(move || {
                    let agent = agent();
                    let mut out = Vec::new();
                    while Instant::now() < deadline {
                        let (status, t) = post(&agent, url, key, body);
                        out.push((status, t));
                        if status == 429 {
                            // A polite client backs off a little before retrying.
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    };
    let models = Arc::new(
        FaceModels::load(&shared().join("models")).expect("face models in VISAGE_SHARED/models"),
    );
    let dir = tempfile::tempdir().expect("a temporary folder");
    let location =
        o.db.clone()
            .unwrap_or_else(|| dir.path().join("load.sqlite").display().to_string());
    let mut gallery = GalleryDb::open(&location, models.manifest_id()).expect("gallery");
    let key = gallery
        .create_key("load", &[Scope::Identify, Scope::Manage])
        .expect("key")
        .secret;
    let identify_bytes = std::fs::read(photo(&o.photo)).expect("identify photo");
    let enroll_bytes = std::fs::read(photo(&o.enroll_photo)).expect("enrol photo");
    let config = ServerConfig {
        workers: o.workers,
        queue: o.queue,
        ..ServerConfig::default()
    };
    let state = AppState::new(Arc::clone(&models), gallery, config).expect("state");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(visage_server::serve(listener, state, async {
        let _ = stop_rx.await;
    }));
    println!(
        "load: {} on {base}: {} inference threads, queue {}, identify {} ({} bytes)",
        if o.db.is_some() {
            "PostgreSQL/--db gallery"
        } else {
            "SQLite gallery"
        },
        o.workers,
        o.queue,
        o.photo,
        identify_bytes.len()
    );

    // Someone to find, so identify does real searching.
    let first = form(
        &[("name", "Seed Person")],
        &[("image", "seed.jpg", &enroll_bytes)],
    );
    assert_eq!(
        post(&agent(), &format!("{base}/api/v1/people"), &key, &first).0,
        201
    );

    // Phase 1: steady load with enrolments alongside.
    let identify_url = format!("{base}/api/v1/identify");
    let body = form(&[], &[("image", "frame.jpg", &identify_bytes)]);
    let enrolled = Arc::new(Mutex::new(Vec::<String>::new()));
    let enroll_errors = Arc::new(Mutex::new(Vec::<u16>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let enroller = {
        let (enrolled, enroll_errors, done) = (
            Arc::clone(&enrolled),
            Arc::clone(&enroll_errors),
            Arc::clone(&done),
        );
        let (url, key, bytes, every) = (
            format!("{base}/api/v1/people"),
            key.clone(),
            enroll_bytes.clone(),
            o.enroll_every_ms,
        );
        std::thread::spawn(move || {
            let agent = agent();
            let mut i = 0;
            while !done.load(Ordering::SeqCst) {
                i += 1;
                let name = format!("Load Person {i}");
                let f = form(&[("name", &name)], &[("image", "p.jpg", &bytes)]);
                match post(&agent, &url, &key, &f).0 {
                    201 => enrolled.lock().unwrap().push(name),
                    s => enroll_errors.lock().unwrap().push(s),
                }
                std::thread::sleep(Duration::from_millis(every));
            }
        })
    };
    let started = Instant::now();
    let results = hammer(o.clients, o.seconds, &identify_url, &key, &body);
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let _ = enroller.join();
    let mut ok: Vec<f64> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, t)| *t)
        .collect();
    ok.sort_by(f64::total_cmp);
    let errors = results.len() - ok.len();
    let mut error_statuses: Vec<u16> = results
        .iter()
        .filter(|(s, _)| *s != 200)
        .map(|(s, _)| *s)
        .collect();
    error_statuses.sort_unstable();
    let enroll_errors = enroll_errors.lock().unwrap().clone();
    println!(
        "load: steady: {} clients for {elapsed:.1} s: {} identified, {:.2} requests/s, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, errors {errors} {error_statuses:?} (0: no answer)",
        o.clients,
        ok.len(),
        ok.len() as f64 / elapsed,
        percentile(&ok, 0.5) * 1e3,
        percentile(&ok, 0.99) * 1e3,
        ok.last().copied().unwrap_or(f64::NAN) * 1e3,
    );
    let names = enrolled.lock().unwrap().clone();
    println!(
        "load: enrolments during the load: {} stored, {} failed {enroll_errors:?}",
        names.len(),
        enroll_errors.len()
    );

    // Phase 2: overload.
    let over = hammer(
        o.overload_clients,
        o.overload_seconds,
        &identify_url,
        &key,
        &body,
    );
    let count = |code: u16| over.iter().filter(|(s, _)| *s == code).count();
    let other = over.len() - count(200) - count(429);
    println!(
        "load: overload: {} clients for {:.0} s: {} answered 200, {} answered 429, {other} other",
        o.overload_clients,
        o.overload_seconds,
        count(200),
        count(429)
    );
    let agent = agent();
    let health = agent.get(&format!("{base}/api/v1/health")).call();
    let healthy = matches!(&health, Ok(r) if r.status() == 200);
    println!(
        "load: health after the overload: {}",
        if healthy { "ok" } else { "FAILED" }
    );

    // Phase 3: everyone enrolled during the load is there.
    let listed: String = agent
        .get(&format!("{base}/api/v1/people"))
        .header("Authorization", &format!("Bearer {key}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap_or_default();
    let present: Vec<&str> = listed["people"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !present.contains(&n.as_str()))
        .collect();
    println!(
        "load: after the load {} people listed; of {} enrolled during it, {} missing",
        present.len(),
        names.len(),
        missing.len()
    );
    let _ = stop_tx.send(());
    let _ = runtime.block_on(server);

    let pass = errors == 0
        && enroll_errors.is_empty()
        && count(429) > 0
        && other == 0
        && healthy
        && missing.is_empty()
        && !names.is_empty();
    println!("load: {}", if pass { "PASS" } else { "FAIL" });
    std::process::exit(if pass { 0 } else { 1 });
}
