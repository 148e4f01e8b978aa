//! `visage keys` and `visage serve` end to end: keys made, listed and revoked from the command
//! line are the ones the service checks.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{json, models, visage};

/// A bare HTTP/1.1 GET with an optional key: (status, body).
fn get(addr: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the service listens");
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

#[test]
fn keys_from_the_command_line_guard_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gallery.sqlite");
    let (db, models) = (db.to_str().unwrap(), models());
    let models = models.to_str().unwrap();
    let made = json(&visage(&[
        "keys", "create", "--name", "admin", "--scope", "manage", "--scope", "identify", "--db",
        db, "--models", models, "--json",
    ]));
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("vsk_"));
    let door = visage(&["keys", "create", "--name", "door", "--db", db]);
    assert!(door.status.success());
    let listed = json(&visage(&["keys", "list", "--db", db, "--json"]));
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    assert_eq!(listed["keys"][1]["scopes"][0], "identify");
    let bad = visage(&["keys", "revoke", "99", "--db", db]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no API key with id 99"));

    let mut server = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--db",
            db,
            "--models",
            models,
            "--workers",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("visage serve starts");
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let (status, body) = get(&addr, "/api/v1/health", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"gallery\":\"sqlite\""), "{body}");
    assert_eq!(get(&addr, "/api/v1/people", Some(&secret)).0, 200);
    assert_eq!(get(&addr, "/api/v1/people", None).0, 401);
    let id = made["key"]["id"].as_i64().unwrap().to_string();
    assert!(visage(&["keys", "revoke", &id, "--db", db])
        .status
        .success());
    assert_eq!(
        get(&addr, "/api/v1/people", Some(&secret)).0,
        401,
        "revoked"
    );
    let (status, body) = get(&addr, "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    assert!(body.contains("\"openapi\": \"3.1.0\""));
    server.kill().unwrap();
    let _ = server.wait();
}
