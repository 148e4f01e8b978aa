//! The adapters for networks Visage trains or users supply: a `visage train` checkpoint (trained
//! here for a few steps on real Omniglot images) and VGG19 with random weights.

use visage_image::{decode_file, DecodeOptions};
use visage_inspect::{grey_square, CheckpointInspector, Network, Vgg19Inspector};
use visage_testdata::shared;
use visage_train::augment::Augment;
use visage_train::checkpoint::InspectableNet;
use visage_train::data::{character_images, load_image, load_omniglot, Framing};
use visage_train::model::NetConfig;
use visage_train::train::{train, Method, TrainConfig};

#[test]
fn a_checkpoint_is_inspected_as_it_was_trained() {
    let set = shared().join("data/omniglot/images_background_small1");
    let mut data = load_omniglot(&set, 12, Framing::OMNIGLOT).expect("omniglot loads");
    data.classes.truncate(8);
    let mut cfg = TrainConfig::omniglot(Method::Proto { shots: 1 });
    cfg.net = NetConfig {
        input_size: 12,
        blocks: 2,
        channels: 8,
        last_channels: None,
        ..NetConfig::default()
    };
    cfg.steps = 2;
    cfg.classes_per_batch = 4;
    cfg.images_per_class = 2;
    cfg.augment = Augment::NONE;
    cfg.checkpoint_every = 0;
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = train(&cfg, &data, dir.path(), None, &mut |_| {}).expect("trains");

    let inspector = CheckpointInspector::load(&summary.checkpoint).expect("loads");
    assert_eq!(inspector.layer_names(), ["blocks.0.conv", "blocks.1.conv"]);
    // 3x3 convolution; then 2x2/2 pooling (4, jump 2) and a 3x3 convolution: 4 + 2·2 = 8.
    assert_eq!(inspector.receptive_field(0).describe(), "3x3, jump 1");
    assert_eq!(inspector.receptive_field(1).describe(), "8x8, jump 2");

    // A photograph's path through the adapter (decode, grey, shrink, ink) gives the network
    // the same input as training's loader.
    let file = character_images(&set.join(&data.classes[0].name)).expect("images")[0].clone();
    // Proto's defaults frame each drawing (centred, fixed radius): both paths must too.
    assert_eq!(inspector.framing(), cfg.framing);
    assert_ne!(cfg.framing, Framing::AsDrawn);
    let input = grey_square(
        &decode_file(&file, &DecodeOptions::default()).expect("decodes"),
        inspector.input_size(),
        inspector.framing(),
    );
    let maps = inspector.activations(&input, &[0, 1]).expect("runs");
    let direct = InspectableNet::load(&summary.checkpoint)
        .expect("loads")
        .activations(&[load_image(&file, 12, cfg.framing).expect("loads")])
        .expect("runs");
    for (map, reference) in maps.iter().zip(&direct) {
        assert_eq!(
            [1, map.channels, map.dims[0], map.dims[1]],
            reference.dims,
            "{}",
            reference.layer
        );
        let worst = map
            .data
            .iter()
            .zip(&reference.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{}: {worst}", reference.layer);
    }
}

#[test]
fn vgg19_layers_and_receptive_fields_follow_torchvision() {
    let vgg = Vgg19Inspector::load(None).expect("random weights");
    let names = vgg.layer_names();
    assert_eq!(names.len(), 37);
    assert_eq!(vgg.describe_layer(3), "relu1_2");
    assert_eq!(vgg.describe_layer(36), "pool5");
    // relu1_2 sees 5x5 pixels; pool5 268x268 with a jump of 32 (VGG16's 212, plus one more
    // 3x3 convolution in each of blocks 3, 4 and 5 at jumps 4, 8 and 16: 212 + 8 + 16 + 32).
    assert_eq!(vgg.receptive_field(3).describe(), "5x5, jump 1");
    assert_eq!(vgg.receptive_field(36).describe(), "268x268, jump 32");
    let photo = shared().join("data/imagenet_sample");
    let first = std::fs::read_dir(&photo)
        .expect("imagenet_sample")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .min()
        .expect("a photo");
    let img = decode_file(&first, &DecodeOptions::default()).expect("decodes");
    let input = visage_inspect::MobileNetInspector::prepare(&img);
    let maps = vgg.activations(&input, &[3, 8]).expect("runs");
    assert_eq!(
        (maps[0].channels, maps[0].dims.clone()),
        (64, vec![224, 224])
    );
    assert_eq!(
        (maps[1].channels, maps[1].dims.clone()),
        (128, vec![112, 112])
    );
    assert!(maps[0].data.iter().all(|v| v.is_finite() && *v >= 0.0));
}
