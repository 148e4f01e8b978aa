//! The same gallery behaviour on SQLite and on PostgreSQL (through [`GalleryDb`]): enrolment
//! rules, people queries, the change generation two instances use to stay in step, and API keys.
//!
//! PostgreSQL comes from `VISAGE_TEST_POSTGRES` (a server URL; `.ci/run` starts one). When it is
//! set the PostgreSQL tests must reach it and fail otherwise; unset, they are skipped with a note.

use visage_gallery::{EnrollMode, GalleryDb, GalleryError, IndexKind, NewTemplate, Scope, DIM};

fn template(seed: f32) -> NewTemplate {
    let mut encoding = [0.0; DIM];
    for (i, v) in encoding.iter_mut().enumerate() {
        *v = ((i as f32 * 0.37 + seed).sin()) * 0.1;
    }
    NewTemplate {
        encoding,
        image_sha256: format!("{:064x}", seed as u64),
        rect: [1, 2, 3, 4],
        source: Some(format!("img{seed}.jpg")),
    }
}

fn behaves_like_a_gallery(location: &str) {
    assert!(matches!(
        GalleryDb::open_existing(location),
        Err(GalleryError::NotFound { .. })
    ));
    let mut a = GalleryDb::open(location, "m1").unwrap();
    // A second instance on the same gallery.
    let b = GalleryDb::open(location, "m1").unwrap();
    assert!(matches!(
        GalleryDb::open(location, "m2"),
        Err(GalleryError::ManifestMismatch { .. })
    ));
    assert_eq!(a.threshold().unwrap(), 0.6);
    let g0 = b.generation().unwrap();
    let e = a
        .enroll("Ada", &[template(1.0), template(2.0)], EnrollMode::New)
        .unwrap();
    assert!(e.created && e.templates_added == 2);
    assert!(
        b.generation().unwrap() > g0,
        "the other instance sees the change"
    );
    assert!(matches!(
        a.enroll("Ada", &[template(3.0)], EnrollMode::New),
        Err(GalleryError::PersonExists(_))
    ));
    assert!(
        !a.enroll("Ada", &[template(3.0)], EnrollMode::Append)
            .unwrap()
            .created
    );
    a.enroll("Bob", &[template(10.0)], EnrollMode::New).unwrap();
    a.enroll("bea", &[template(20.0)], EnrollMode::New).unwrap();
    let people = b.people().unwrap();
    assert_eq!(
        people
            .iter()
            .map(|p| (p.name.as_str(), p.templates))
            .collect::<Vec<_>>(),
        [("Ada", 3), ("Bob", 1), ("bea", 1)],
        "byte order, as SQLite sorts"
    );
    let (p, t) = b.person("Ada").unwrap();
    assert_eq!(p.templates, 3);
    assert_eq!(t[1].encoding, template(2.0).encoding);
    assert_eq!(t[0].rect, [1, 2, 3, 4]);
    assert_eq!(t[0].source.as_deref(), Some("img1.jpg"));
    for kind in [IndexKind::Exact, IndexKind::Hnsw] {
        let s = b.searcher(kind).unwrap();
        assert_eq!(s.len(), 5);
        let c = s.identify(&template(10.0).encoding, 2);
        assert_eq!(c[0].name, "Bob");
        assert!(c[0].distance < 1e-3);
        assert_ne!(c[1].name, "Bob");
    }
    a.rename("Ada", "Ada L").unwrap();
    assert!(matches!(
        a.rename("Nobody", "X"),
        Err(GalleryError::UnknownPerson(_))
    ));
    assert!(matches!(
        a.rename("Bob", "Ada L"),
        Err(GalleryError::PersonExists(_))
    ));
    assert!(matches!(
        a.enroll("  ", &[template(1.0)], EnrollMode::New),
        Err(GalleryError::InvalidName(_))
    ));
    let before = b.generation().unwrap();
    assert_eq!(a.remove("Ada L").unwrap(), 3);
    assert!(b.generation().unwrap() > before);
    assert!(matches!(
        a.remove("Ada L"),
        Err(GalleryError::UnknownPerson(_))
    ));
    assert!(!b.contains("Ada L").unwrap() && b.contains("Bob").unwrap());
    assert_eq!(b.template_count().unwrap(), 2);
    a.set_threshold(0.5).unwrap();
    assert_eq!(b.threshold().unwrap(), 0.5);

    // API keys are shared by the instances, stored hashed.
    let door = a.create_key("door", &[Scope::Identify]).unwrap();
    let found = b.key_for_secret(&door.secret).unwrap().unwrap();
    assert!(found.allows(Scope::Identify) && !found.allows(Scope::Manage));
    assert!(b.key_for_secret("vsk_wrong").unwrap().is_none());
    a.revoke_key(door.key.id).unwrap();
    assert!(!b
        .key_for_secret(&door.secret)
        .unwrap()
        .unwrap()
        .allows(Scope::Identify));
    assert!(matches!(
        a.revoke_key(4242),
        Err(GalleryError::UnknownKey(4242))
    ));
    assert_eq!(b.keys().unwrap().len(), 1);
}

#[test]
fn sqlite_behaves_like_a_gallery() {
    let dir = tempfile::tempdir().unwrap();
    behaves_like_a_gallery(dir.path().join("g.sqlite").to_str().unwrap());
}

#[test]
fn postgres_behaves_like_a_gallery() {
    if let Some(url) = visage_testdata::postgres_database("visage_gallery") {
        behaves_like_a_gallery(&url);
    }
}

#[test]
fn postgres_concurrent_enrolments_of_one_name_create_one_person() {
    let Some(url) = visage_testdata::postgres_database("visage_gallery") else {
        return;
    };
    GalleryDb::open(&url, "m1").unwrap();
    let outcomes: Vec<Result<bool, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let url = url.clone();
                s.spawn(move || {
                    let mut g = GalleryDb::open(&url, "m1").unwrap();
                    g.enroll("Same", &[template(i as f32)], EnrollMode::New)
                        .map(|e| e.created)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .all(|e| e.contains("already enrolled")));
    let g = GalleryDb::open_existing(&url).unwrap();
    assert_eq!(g.people().unwrap().len(), 1);
    assert_eq!(g.template_count().unwrap(), 1);
}

#[test]
fn an_unreachable_postgres_is_a_clear_error() {
    let err = GalleryDb::open("postgres://nobody@127.0.0.1:9/none", "m1")
        .err()
        .expect("refused");
    assert!(matches!(err, GalleryError::Postgres { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:9/none"), "{text}");
}
