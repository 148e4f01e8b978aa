//! The whole pipeline from the original photo files (not the peer's decoded PNGs): the same
//! boxes as the peer, every face, and encodings within 0.02 Euclidean distance of the peer's.

mod common;

use visage_face::{distance, DetectOptions, Encoding, FaceModels, Stage};
use visage_image::{decode_file, DecodeOptions};

#[test]
fn originals_give_the_peers_boxes_and_encodings() {
    let models = FaceModels::load(&common::models_dir()).expect("models");
    let mut worst: f32 = 0.0;
    let mut faces_checked = 0;
    for golden in common::goldens() {
        let image =
            decode_file(&golden.original_path(), &DecodeOptions::default()).expect("decode");
        let faces = models
            .analyze(&image, &DetectOptions::default(), Stage::Encode)
            .expect("pipeline");
        let want = golden.json["faces"].as_array().expect("faces");
        assert_eq!(faces.len(), want.len(), "{}: number of faces", golden.name);
        for (face, want) in faces.iter().zip(want) {
            let r = &want["rect"];
            let want_rect = [
                r["left"].as_i64(),
                r["top"].as_i64(),
                r["right"].as_i64(),
                r["bottom"].as_i64(),
            ];
            let got_rect = [
                face.rect.left,
                face.rect.top,
                face.rect.right,
                face.rect.bottom,
            ]
            .map(Some);
            assert_eq!(got_rect, want_rect, "{}: box", golden.name);
            let mut want_encoding: Encoding = [0.0; 128];
            for (slot, v) in want_encoding
                .iter_mut()
                .zip(want["encoding"].as_array().expect("encoding"))
            {
                *slot = v.as_f64().expect("number") as f32;
            }
            let d = distance(&face.encoding.expect("encoded"), &want_encoding);
            assert!(d < 0.02, "{}: encoding {d} from the peer's", golden.name);
            worst = worst.max(d);
            faces_checked += 1;
        }
    }
    eprintln!("{faces_checked} faces, worst encoding distance from the peer's {worst:.2e}");
    assert!(faces_checked >= 25);
}
