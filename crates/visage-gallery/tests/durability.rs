//! The gallery under a killed writer and under concurrent readers.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use visage_gallery::{EnrollMode, Gallery, IndexKind, NewTemplate, DIM};

const TEMPLATES_PER_PERSON: usize = 5;
const CHILD_ENV: &str = "VISAGE_GALLERY_TEST_WRITER_DB";

fn template(person: usize, k: usize) -> NewTemplate {
    let mut encoding = [0.0f32; DIM];
    for (i, v) in encoding.iter_mut().enumerate() {
        *v = ((person * 31 + i) as f32 * 0.013).sin() * 0.1 + k as f32 * 1e-3;
    }
    NewTemplate {
        encoding,
        image_sha256: format!("{person:032x}{k:032x}"),
        rect: [0, 0, 10, 10],
        source: None,
    }
}

fn person_templates(p: usize) -> Vec<NewTemplate> {
    (0..TEMPLATES_PER_PERSON).map(|k| template(p, k)).collect()
}

/// Enrolls people until killed, printing each commit after it returns.
fn writer(db: &Path) {
    let mut g = Gallery::open(db, "test-models").expect("open");
    let mut out = std::io::stdout();
    for p in 0.. {
        g.enroll(
            &format!("person {p:06}"),
            &person_templates(p),
            EnrollMode::New,
        )
        .expect("enroll");
        writeln!(out, "committed {p}").expect("stdout");
        out.flush().expect("flush");
    }
}

#[test]
fn kill_mid_batch_keeps_exactly_the_committed_people() {
    if let Some(db) = std::env::var_os(CHILD_ENV) {
        writer(Path::new(&db));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.sqlite");
    // The child is this test binary running this test with the variable set.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_mid_batch_keeps_exactly_the_committed_people",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = None;
    let start = Instant::now();
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("committed ") {
            last = Some(n.parse::<usize>().unwrap());
            if last >= Some(200) {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "writer too slow"
        );
    }
    child.kill().expect("kill");
    child.wait().unwrap();
    // What the child printed before dying is still in the pipe.
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("committed ") {
            last = Some(n.parse::<usize>().unwrap());
        }
    }
    let printed = last.expect("some commits") + 1;
    let g = Gallery::open(&db, "test-models").expect("the gallery opens after the kill");
    let people = g.people().unwrap();
    // The kill can land between a commit and its line, never inside a transaction.
    assert!(
        people.len() == printed || people.len() == printed + 1,
        "{} people, {printed} printed",
        people.len()
    );
    for (i, p) in people.iter().enumerate() {
        assert_eq!(p.name, format!("person {i:06}"));
        assert_eq!(p.templates, TEMPLATES_PER_PERSON, "{} is partial", p.name);
    }
    assert_eq!(
        g.template_count().unwrap(),
        people.len() * TEMPLATES_PER_PERSON
    );
    let check: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn readers_keep_working_during_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.sqlite");
    let mut g = Gallery::open(&db, "test-models").unwrap();
    g.enroll("seed", &person_templates(0), EnrollMode::New)
        .unwrap();
    let writing = AtomicBool::new(true);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while writing.load(Ordering::Relaxed) {
                    let r = Gallery::open_existing(&db).expect("reader opens");
                    let people = r.people().expect("reader lists");
                    assert!(
                        people.iter().all(|p| p.templates == TEMPLATES_PER_PERSON),
                        "whole people only"
                    );
                    let s = r
                        .searcher(IndexKind::Exact)
                        .expect("reader loads templates");
                    assert_eq!(s.len() % TEMPLATES_PER_PERSON, 0, "whole people only");
                    assert_eq!(s.identify(&template(0, 0).encoding, 1)[0].name, "seed");
                    let latest = s.len() / TEMPLATES_PER_PERSON - 1;
                    let found = s.identify(&template(latest, 0).encoding, 1);
                    assert!(
                        !found[0].name.is_empty(),
                        "templates and names from one snapshot"
                    );
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for p in 1..=300 {
            g.enroll(&format!("p{p}"), &person_templates(p), EnrollMode::New)
                .unwrap();
        }
        writing.store(false, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(g.people().unwrap().len(), 301);
}
