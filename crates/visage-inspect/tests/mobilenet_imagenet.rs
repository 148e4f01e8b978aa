//! MobileNetV2's torchvision weights load correctly: real ImageNet photos get their class.

use std::path::PathBuf;

use visage_image::{decode_file, DecodeOptions};
use visage_inspect::{Input, MobileNetInspector};
use visage_testdata::shared;

#[test]
fn classifies_imagenet_photos() {
    let shared = shared();
    let net =
        MobileNetInspector::load(&shared.join("models/mobilenet_v2/mobilenet_v2-b0353104.pth"))
            .expect("weights load");
    let dir = shared.join("data/imagenet_sample");
    let classes = std::fs::read_to_string(dir.join("classes.tsv")).expect("classes.tsv");
    let index_of = |wnid: &str| -> usize {
        classes
            .lines()
            .skip(1)
            .find_map(|l| {
                let mut f = l.split('\t');
                let i = f.next()?;
                (f.next()? == wnid).then(|| i.parse().ok())?
            })
            .expect("wnid listed")
    };
    // A fixed handful, chosen by name order rather than by result.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sample dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    let picked: Vec<&PathBuf> = files.iter().step_by(files.len() / 8).take(8).collect();
    let (mut top1, mut top5) = (0, 0);
    for path in &picked {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let wnid = name.split('_').next().expect("wnid");
        let want = index_of(wnid);
        let img = decode_file(path, &DecodeOptions::default()).expect("decode");
        let Input::Image(square) = MobileNetInspector::prepare(&img) else {
            panic!("image input")
        };
        let logits = net.logits(&square).expect("forward");
        assert_eq!(logits.len(), 1000);
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        eprintln!("{name}: want {want}, top-5 {:?}", &order[..5]);
        top1 += usize::from(order[0] == want);
        top5 += usize::from(order[..5].contains(&want));
    }
    eprintln!(
        "top-1 {top1}/{}, top-5 {top5}/{}",
        picked.len(),
        picked.len()
    );
    assert!(top5 >= 6, "top-5 {top5} of {}", picked.len());
    assert!(top1 >= 4, "top-1 {top1} of {}", picked.len());
}
