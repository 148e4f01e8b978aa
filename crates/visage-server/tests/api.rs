//! Every endpoint and every error of the service, on SQLite and on PostgreSQL, with real photos
//! through the real models.

mod common;

use std::time::Duration;

use common::{agent, delete, get, patch_json, post_form, Backend, Multipart, Server};
use visage_gallery::Scope;
use visage_server::ServerConfig;

const OBAMA: &str = "examples__obama.jpg";
const OBAMA_AGAIN: &str = "tests__test_images__obama2.jpg";
const BIDEN: &str = "examples__biden.jpg";
const STRANGER: &str = "examples__knn_examples__train__kit_harington__john1.jpeg";
const BOTH: &str = "examples__knn_examples__test__obama_and_biden.jpg";

/// A small PNG without any face.
fn blank_png() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(64, 48, image::Rgb([200, 180, 160]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn every_endpoint_and_error(backend: &Backend) {
    let config = ServerConfig {
        max_body_bytes: 2 * 1024 * 1024,
        workers: 2,
        queue: 8,
        ..ServerConfig::default()
    };
    let admin = backend.key("admin", &[Scope::Identify, Scope::Manage]);
    let door = backend.key("door", &[Scope::Identify]);
    let manager = backend.key("manager", &[Scope::Manage]);
    let revoked = {
        let mut g = backend.open();
        let k = g.create_key("old", &[Scope::Identify]).unwrap();
        g.revoke_key(k.key.id).unwrap();
        k.secret
    };
    let server = Server::start(backend, config);
    let http = agent();
    let url = |p: &str| server.url(p);

    // Health, OpenAPI, the page: no key needed.
    let health = get(&http, &url("/api/v1/health"), None);
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["status"], "ok");
    let openapi = get(&http, &url("/api/v1/openapi.json"), None).json();
    for path in [
        "/health",
        "/verify",
        "/identify",
        "/people",
        "/people/{name}",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} is documented");
    }
    let page = get(&http, &url("/"), None);
    assert!(page.status == 200 && page.body.contains("/app.js"));
    assert!(get(&http, &url("/app.js"), None)
        .body
        .contains("getUserMedia"));
    assert_eq!(get(&http, &url("/style.css"), None).status, 200);
    assert_eq!(get(&http, &url("/nowhere"), None).code(), "not_found");

    // 401: no key, a wrong key, a revoked key; 403: a key without the scope.
    let identify = |key: Option<&str>, photo: &str| {
        post_form(
            &http,
            &url("/api/v1/identify"),
            key,
            Multipart::default().file("image", photo),
        )
    };
    for key in [None, Some("vsk_wrong"), Some(revoked.as_str())] {
        let a = identify(key, OBAMA);
        assert_eq!(
            (a.status, a.code().as_str()),
            (401, "unauthorized"),
            "{key:?}"
        );
    }
    let a = identify(Some(&manager), OBAMA);
    assert_eq!((a.status, a.code().as_str()), (403, "forbidden"));
    let a = post_form(
        &http,
        &url("/api/v1/people"),
        Some(&door),
        Multipart::default().text("name", "x").file("image", OBAMA),
    );
    assert_eq!(a.status, 403);
    assert_eq!(get(&http, &url("/api/v1/people"), Some(&door)).status, 403);

    // An empty gallery cannot identify anyone, as the CLI says.
    let a = identify(Some(&door), OBAMA);
    assert_eq!((a.status, a.code().as_str()), (409, "empty_gallery"));

    // Enrol: 201, the same name again 409, a photo with two faces 422 (nothing stored), a
    // photo without a face 422.
    let enroll = |name: &str, form: Multipart| {
        post_form(
            &http,
            &url("/api/v1/people"),
            Some(&admin),
            form.text("name", name),
        )
    };
    let a = enroll("Barack Obama", Multipart::default().file("image", OBAMA));
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["templates_added"], 1);
    let a = enroll("Barack Obama", Multipart::default().file("image", OBAMA));
    assert_eq!((a.status, a.code().as_str()), (409, "conflict"));
    let a = enroll(
        "Joe Biden",
        Multipart::default()
            .file("image", BIDEN)
            .file("image", BOTH),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.body.contains("faces (send largest=true"), "{}", a.body);
    let a = enroll(
        "Nobody",
        Multipart::default().bytes("image", "blank.png", &blank_png()),
    );
    assert_eq!((a.status, a.code().as_str()), (422, "unusable_image"));
    assert!(a.body.contains("no face found"));
    let a = enroll("Joe Biden", Multipart::default().file("image", BIDEN));
    assert_eq!(a.status, 201, "{}", a.body);
    let a = enroll(
        "Joe Biden",
        Multipart::default()
            .file("image", "tests__test_images__biden.jpg")
            .text("largest", "true")
            .text("append", "true"),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["created"], false);

    // Identify: a second photo named, a stranger not recognized, two people in one photo.
    let a = identify(Some(&door), OBAMA_AGAIN).json();
    assert_eq!(a["faces"][0]["name"], "Barack Obama", "{a}");
    assert_eq!(a["faces"][0]["recognized"], true);
    assert_eq!(a["threshold"], 0.6);
    let a = identify(Some(&door), STRANGER).json();
    assert_eq!(a["faces"].as_array().unwrap().len(), 1);
    assert_eq!(a["faces"][0]["recognized"], false, "{a}");
    assert!(a["faces"][0]["name"].is_null());
    let a = identify(Some(&admin), BOTH).json();
    let names: Vec<&str> = a["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Barack Obama") && names.contains(&"Joe Biden"),
        "{a}"
    );
    let a = post_form(
        &http,
        &url("/api/v1/identify"),
        Some(&door),
        Multipart::default()
            .file("image", OBAMA_AGAIN)
            .text("top", "2"),
    )
    .json();
    assert_eq!(a["faces"][0]["candidates"].as_array().unwrap().len(), 2);

    // Verify: same person, different people, a photo without a face.
    let verify = |a: &str, b: &str| {
        post_form(
            &http,
            &url("/api/v1/verify"),
            Some(&door),
            Multipart::default().file("a", a).file("b", b),
        )
    };
    let same = verify(OBAMA, OBAMA_AGAIN).json();
    assert_eq!(same["same_person"], true, "{same}");
    assert!(same["distance"].as_f64().unwrap() < 0.6);
    assert_eq!(verify(OBAMA, BIDEN).json()["same_person"], false);
    let a = post_form(
        &http,
        &url("/api/v1/verify"),
        Some(&door),
        Multipart::default()
            .file("a", OBAMA)
            .bytes("b", "blank.png", &blank_png()),
    );
    assert_eq!(a.status, 422);
    assert!(a.body.contains("blank.png: no face found"), "{}", a.body);

    // 400: not multipart, a broken multipart body, a missing field, not an image, bad numbers.
    let a = common::answer_of(
        http.post(&url("/api/v1/identify"))
            .header("Authorization", &format!("Bearer {door}"))
            .header("Content-Type", "application/json")
            .send(&b"{}"[..]),
    );
    assert_eq!((a.status, a.code().as_str()), (400, "bad_request"));
    let a = common::answer_of(
        http.post(&url("/api/v1/identify"))
            .header("Authorization", &format!("Bearer {door}"))
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={}", common::BOUNDARY),
            )
            .send(&b"--nonsense\r\nwhat\r\n"[..]),
    );
    assert_eq!(
        (a.status, a.code().as_str()),
        (400, "bad_request"),
        "{}",
        a.body
    );
    let a = post_form(
        &http,
        &url("/api/v1/identify"),
        Some(&door),
        Multipart::default().text("top", "1"),
    );
    assert_eq!(a.status, 400);
    assert!(a.body.contains("missing the image field"));
    let a = post_form(
        &http,
        &url("/api/v1/identify"),
        Some(&door),
        Multipart::default().bytes("image", "notes.txt", b"hello, not an image"),
    );
    assert_eq!((a.status, a.code().as_str()), (400, "bad_image"));
    assert!(a.body.contains("notes.txt"));
    let a = post_form(
        &http,
        &url("/api/v1/identify"),
        Some(&door),
        Multipart::default()
            .file("image", OBAMA)
            .text("top", "1000"),
    );
    assert_eq!(a.status, 400);
    let a = post_form(
        &http,
        &url("/api/v1/verify"),
        Some(&door),
        Multipart::default()
            .file("a", OBAMA)
            .file("b", BIDEN)
            .text("threshold", "-1"),
    );
    assert_eq!(a.status, 400);

    // 413: a body declared over the limit (2 MiB here) is refused before it is sent.
    let a = common::declare_body(&server.base, "/api/v1/identify", &door, 3 * 1024 * 1024);
    assert_eq!(
        (a.status, a.code().as_str()),
        (413, "too_large"),
        "{}",
        a.body
    );

    // People: list, show, rename, remove, and their errors.
    let list = get(&http, &url("/api/v1/people"), Some(&admin)).json();
    let people: Vec<(&str, u64)> = list["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["templates"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(people, [("Barack Obama", 1), ("Joe Biden", 2)]);
    let show = get(&http, &url("/api/v1/people/Joe%20Biden"), Some(&manager)).json();
    assert_eq!(show["templates"].as_array().unwrap().len(), 2);
    assert_eq!(show["templates"][0]["source"], BIDEN);
    assert_eq!(
        show["templates"][1]["source"],
        "tests__test_images__biden.jpg"
    );
    assert_eq!(
        get(&http, &url("/api/v1/people/Nobody"), Some(&admin)).code(),
        "not_found"
    );
    let a = patch_json(
        &http,
        &url("/api/v1/people/Barack%20Obama"),
        &admin,
        r#"{"name": "Obama"}"#,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = patch_json(
        &http,
        &url("/api/v1/people/Obama"),
        &admin,
        r#"{"name": "Joe Biden"}"#,
    );
    assert_eq!((a.status, a.code().as_str()), (409, "conflict"));
    let a = patch_json(&http, &url("/api/v1/people/Obama"), &admin, "{name");
    assert_eq!((a.status, a.code().as_str()), (400, "bad_request"));
    let a = patch_json(
        &http,
        &url("/api/v1/people/Nobody"),
        &admin,
        r#"{"name": "X"}"#,
    );
    assert_eq!(a.status, 404);
    // The renamed person is identified by the new name at once.
    assert_eq!(
        identify(Some(&door), OBAMA_AGAIN).json()["faces"][0]["name"],
        "Obama"
    );
    let a = delete(&http, &url("/api/v1/people/Obama"), &admin);
    assert_eq!(a.json()["templates_removed"], 1);
    assert_eq!(
        delete(&http, &url("/api/v1/people/Obama"), &admin).status,
        404
    );
    assert_eq!(
        delete(&http, &url("/api/v1/people/Joe%20Biden"), &door).status,
        403
    );
    let a = identify(Some(&door), OBAMA_AGAIN).json();
    assert_eq!(a["faces"][0]["recognized"], false, "removed: {a}");

    // Metrics count what was answered, by route pattern.
    let metrics = get(&http, &url("/metrics"), None).body;
    assert!(metrics.contains(
        "visage_http_requests_total{method=\"POST\",route=\"/api/v1/identify\",status=\"401\"} 3"
    ), "{metrics}");
    assert!(metrics.contains("route=\"/api/v1/people/{name}\""));
    assert!(metrics.contains("visage_inference_workers 2"));
}

#[test]
fn every_endpoint_and_error_on_sqlite() {
    every_endpoint_and_error(&Backend::sqlite());
}

#[test]
fn every_endpoint_and_error_on_postgres() {
    if let Some(backend) = Backend::postgres() {
        every_endpoint_and_error(&backend);
    }
}

/// Two instances on one gallery: what one enrolls or removes, the other sees at once.
fn instances_stay_in_step(backend: &Backend) {
    let admin = backend.key("admin", &[Scope::Identify, Scope::Manage]);
    let (a, b) = (
        Server::start(backend, ServerConfig::default()),
        Server::start(backend, ServerConfig::default()),
    );
    let http = agent();
    let r = post_form(
        &http,
        &a.url("/api/v1/people"),
        Some(&admin),
        Multipart::default()
            .text("name", "Joe Biden")
            .file("image", BIDEN),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let identify_on_b = || {
        post_form(
            &http,
            &b.url("/api/v1/identify"),
            Some(&admin),
            Multipart::default().file("image", BOTH),
        )
        .json()
    };
    let seen = identify_on_b();
    assert!(
        seen["faces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Joe Biden"),
        "{seen}"
    );
    assert_eq!(
        delete(&http, &a.url("/api/v1/people/Joe%20Biden"), &admin).status,
        200
    );
    // B's index follows; with nobody left the gallery is empty again.
    let r = post_form(
        &http,
        &b.url("/api/v1/identify"),
        Some(&admin),
        Multipart::default().file("image", BOTH),
    );
    assert_eq!(r.status, 409, "{}", r.body);
}

#[test]
fn instances_stay_in_step_on_sqlite() {
    instances_stay_in_step(&Backend::sqlite());
}

#[test]
fn instances_stay_in_step_on_postgres() {
    if let Some(backend) = Backend::postgres() {
        instances_stay_in_step(&backend);
    }
}

#[test]
fn a_full_queue_answers_429_and_slow_requests_time_out() {
    let backend = Backend::sqlite();
    let key = backend.key("door", &[Scope::Identify, Scope::Manage]);
    {
        let mut g = backend.open();
        let models = common::models();
        let image = visage_image::decode_file(
            &common::photo(BIDEN),
            &visage_image::DecodeOptions::default(),
        )
        .unwrap();
        let face = models
            .analyze(&image, &Default::default(), visage_face::Stage::Encode)
            .unwrap();
        let e = face[0].encoding.unwrap();
        g.enroll(
            "Joe Biden",
            &[visage_gallery::NewTemplate {
                encoding: e,
                image_sha256: "0".repeat(64),
                rect: [0, 0, 1, 1],
                source: None,
            }],
            visage_gallery::EnrollMode::New,
        )
        .unwrap();
    }
    // One thread and no waiting room: of 8 requests at once, the ones that find the thread busy
    // are refused at once, and the service carries on.
    let server = Server::start(
        &backend,
        ServerConfig {
            workers: 1,
            queue: 0,
            ..ServerConfig::default()
        },
    );
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    post_form(
                        &agent(),
                        &server.url("/api/v1/identify"),
                        Some(&key),
                        Multipart::default().file("image", BOTH),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let a = h.join().unwrap();
                if a.status == 429 {
                    assert_eq!(a.code(), "busy");
                }
                a.status
            })
            .collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    let after = post_form(
        &agent(),
        &server.url("/api/v1/identify"),
        Some(&key),
        Multipart::default().file("image", BIDEN),
    );
    assert_eq!(after.status, 200, "still serving");
    let metrics = get(&agent(), &server.url("/metrics"), None).body;
    assert!(!metrics.contains("visage_inference_rejected_total 0\n"));
    drop(server);

    let server = Server::start(
        &backend,
        ServerConfig {
            request_timeout: Duration::from_millis(1),
            ..ServerConfig::default()
        },
    );
    let a = post_form(
        &agent(),
        &server.url("/api/v1/identify"),
        Some(&key),
        Multipart::default().file("image", BOTH),
    );
    assert_eq!((a.status, a.code().as_str()), (503, "timeout"));
    drop(server);

    // An image over the pixel limit is refused from its header (413), and a body over the size
    // limit sent without a declared length is cut off when the limit is reached (413).
    let server = Server::start(
        &backend,
        ServerConfig {
            max_pixels: 10_000,
            max_body_bytes: 1024 * 1024,
            ..ServerConfig::default()
        },
    );
    let a = post_form(
        &agent(),
        &server.url("/api/v1/identify"),
        Some(&key),
        Multipart::default().file("image", BIDEN),
    );
    assert_eq!((a.status, a.code().as_str()), (413, "image_too_large"));
    let a = common::chunked_body(&server.base, "/api/v1/identify", &key, 2 * 1024 * 1024);
    assert_eq!(
        (a.status, a.code().as_str()),
        (413, "too_large"),
        "{}",
        a.body
    );
}

#[test]
fn a_postgres_gallery_can_be_dropped_on_an_async_thread() {
    // A service shutting down drops its gallery on a runtime thread; the synchronous client
    // must not panic there.
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let gallery = backend.open();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async move { drop(gallery) });
}
