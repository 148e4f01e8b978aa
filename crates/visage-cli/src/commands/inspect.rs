//! `visage inspect`: what a network learned (see the `visage-inspect` crate).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use visage_demos::{ekg, volume, LayerGeometry, Trained};
use visage_face::{DetectOptions, FaceModels};
use visage_formats::manifest::{models_dir, Manifest};
use visage_image::{decode_file, DecodeOptions, RgbImage};
use visage_inspect::report::{render_activations, render_gram, save_png};
use visage_inspect::{
    collect_patches, grey_square, pick_units, scan, write_report, CheckpointInspector,
    FaceResnetInspector, Input, LayerWindow, MobileNetInspector, Network, ScanOptions,
    SequentialInspector, Vgg19Inspector, TOP_K,
};
use visage_train::data::Framing;

use crate::args::{
    InspectAction, InspectActivationsArgs, InspectArgs, InspectGramArgs, InspectModel,
    InspectModelArgs, InspectUnitsArgs,
};

/// Where torchvision's MobileNetV2 weights lie inside the models folder.
const MOBILENET_FILE: &str = "mobilenet_v2/mobilenet_v2-b0353104.pth";

/// Layers shown when none are named: four depths each, shallow to deep.
const MOBILENET_DEFAULT: [&str; 4] = ["features.1", "features.4", "features.7", "features.11"];
/// VGG19's: relu1_2, relu2_2, relu3_4, relu4_4 (Zeiler and Fergus's depths).
const VGG19_DEFAULT: [&str; 4] = ["features.3", "features.8", "features.17", "features.26"];

/// Runs one inspect subcommand.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        InspectAction::Units(a) => run_units(a),
        InspectAction::Activations(a) => run_activations(a),
        InspectAction::Gram(a) => run_gram(a),
        InspectAction::Layers(a) => run_layers(a),
    }
}

/// A loaded network with what it needs to turn a photograph into its input.
struct Loaded {
    name: &'static str,
    net: Box<dyn Network>,
    /// How a photograph becomes the network's input.
    view: View,
    /// Photos in which no face was found (the whole image was used instead).
    no_face: AtomicUsize,
    /// Only for the demo networks: their own held-out inputs, with names, instead of photos.
    demo: Option<(Vec<Input>, Vec<String>)>,
}

/// How a photograph becomes a network's input.
enum View {
    /// The 224x224 centre square (ImageNet networks).
    CentreSquare,
    /// The aligned chip of the face nearest the image centre (the face ResNet).
    FaceChip(Box<FaceModels>),
    /// Grey, framed as the network was trained and shrunk to this side in pixels (networks
    /// from `visage train`).
    GreySquare(usize, Framing),
}

/// Threads the demo networks train on: `visage demo`'s default, so that `inspect` looks at the
/// very network the demo reports on (training is deterministic for a seed and a thread count).
const DEMO_THREADS: usize = 2;

/// Trains a demo network as `visage demo` does and wraps it for inspection.
fn load_demo(
    name: &'static str,
    train: impl FnOnce() -> Result<Trained, visage_demos::DemoError> + Send,
) -> anyhow::Result<Loaded> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(DEMO_THREADS)
        .build()
        .context("cannot start the worker threads")?;
    let t = pool
        .install(train)
        .with_context(|| format!("training the {name} demo network"))?;
    let windows = t
        .layers
        .iter()
        .map(|g| match g {
            LayerGeometry::Conv(c) => LayerWindow::conv(c),
            LayerGeometry::Pool(p) => LayerWindow::pool(p),
            LayerGeometry::Pointwise => LayerWindow::Pointwise,
            LayerGeometry::Global => LayerWindow::Global,
        })
        .collect();
    let inputs = t
        .inputs
        .into_iter()
        .map(|data| match t.input_dims[..] {
            [z, y, x] => Ok(Input::Volume {
                dims: [z, y, x],
                data,
            }),
            [_] => Ok(Input::Signal(data)),
            _ => bail!("{name}: inputs of {} axes", t.input_dims.len()),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let net = SequentialInspector::new(t.net, windows, t.input_dims.len())?;
    Ok(Loaded {
        name,
        net: Box::new(net),
        view: View::CentreSquare,
        no_face: AtomicUsize::new(0),
        demo: Some((inputs, t.input_names)),
    })
}

impl Loaded {
    fn load(args: &InspectModelArgs) -> anyhow::Result<Self> {
        let photos = |name, net: Box<dyn Network>, view| Self {
            name,
            net,
            view,
            no_face: AtomicUsize::new(0),
            demo: None,
        };
        match &args.model {
            InspectModel::MobilenetV2 => {
                let path = match &args.weights {
                    Some(p) => p.clone(),
                    None => models_dir(args.models.models.as_deref())?.join(MOBILENET_FILE),
                };
                let net = MobileNetInspector::load_on(&path, args.device.device.device()?)
                    .with_context(|| format!("cannot load MobileNetV2 from {}", path.display()))?;
                Ok(photos("mobilenet-v2", Box::new(net), View::CentreSquare))
            }
            InspectModel::Vgg19 => {
                if args.weights.is_none() && !args.random_weights {
                    bail!(
                        "--model vgg19 needs --weights FILE (torchvision's vgg19-dcbb9e9d.pth, or \
                         safetensors with the same keys), or --random-weights"
                    );
                }
                let device = args.device.device.device()?;
                let net = Vgg19Inspector::load_on(args.weights.as_deref(), device).with_context(
                    || {
                        format!(
                            "cannot load VGG19 from {}",
                            args.weights.as_deref().unwrap_or(Path::new("")).display()
                        )
                    },
                )?;
                Ok(photos("vgg19", Box::new(net), View::CentreSquare))
            }
            InspectModel::Checkpoint(path) => {
                let net = CheckpointInspector::load(path)
                    .with_context(|| format!("cannot load the checkpoint {}", path.display()))?;
                let view = View::GreySquare(net.input_size(), net.framing());
                Ok(photos("checkpoint", Box::new(net), view))
            }
            InspectModel::Ekg => {
                let opts = ekg::EkgOptions::new(super::demo::ekg_csv(args.csv.clone())?);
                load_demo("ekg", || ekg::train(&opts))
            }
            InspectModel::Volume => {
                let opts = volume::VolumeOptions::default();
                load_demo("volume", || volume::train(&opts))
            }
            InspectModel::DlibResnet => {
                let dir = models_dir(args.models.models.as_deref())?;
                let paths = Manifest::builtin().require(&dir, &["face-encoder"])?;
                let net = FaceResnetInspector::load(&paths[0])?;
                let faces = FaceModels::load(&dir).with_context(|| {
                    format!("cannot load the face models from {}", dir.display())
                })?;
                Ok(photos(
                    "dlib-resnet",
                    Box::new(net),
                    View::FaceChip(Box::new(faces)),
                ))
            }
        }
    }

    /// The network's input for a photograph (see [`View`]); the face ResNet takes the whole
    /// image (resized to 150x150) when no face is found.
    fn prepare(&self, img: RgbImage) -> Input {
        let faces = match &self.view {
            View::CentreSquare => return MobileNetInspector::prepare(&img),
            View::GreySquare(side, framing) => return grey_square(&img, *side, *framing),
            View::FaceChip(faces) => faces,
        };
        let dets = faces.detect(&img, &DetectOptions::default());
        let (cx, cy) = (img.width() as f64 / 2.0, img.height() as f64 / 2.0);
        let nearest = dets.iter().min_by(|a, b| {
            let d = |r: &visage_face::Rect| {
                let (x, y) = r.center();
                (x - cx).powi(2) + (y - cy).powi(2)
            };
            d(&a.rect).total_cmp(&d(&b.rect))
        });
        if let Some(det) = nearest {
            let marks = faces.landmarks(&img, &det.rect);
            if let Ok(chip) = faces.chip(&img, &marks) {
                return Input::Image(chip);
            }
        }
        self.no_face.fetch_add(1, Ordering::Relaxed);
        Input::Image(visage_image::resize::resize_bilinear(&img, 150, 150))
    }

    fn load_input(&self, path: &Path) -> Result<Input, String> {
        let img = decode_file(path, &DecodeOptions::default()).map_err(|e| e.to_string())?;
        Ok(self.prepare(img))
    }

    fn layers(&self, names: &[String]) -> anyhow::Result<Vec<usize>> {
        let names: Vec<String> = if names.is_empty() {
            self.default_layers()
        } else {
            names.to_vec()
        };
        names
            .iter()
            .map(|n| Ok(self.net.layer_index(n.trim())?))
            .collect()
    }

    /// Four depths, with receptive fields of about 7, 30, 80 and 200 pixels; for the demo
    /// networks, the ReLU after each convolution.
    fn default_layers(&self) -> Vec<String> {
        if self.demo.is_some() {
            return self
                .net
                .layer_names()
                .into_iter()
                .filter(|n| n.ends_with(":relu"))
                .collect();
        }
        let names: &[&str] = match (&self.view, self.name) {
            (View::FaceChip(_), _) => &FACE_DEFAULT,
            (_, "vgg19") => &VGG19_DEFAULT,
            (View::CentreSquare, _) => &MOBILENET_DEFAULT,
            // A trained embedding network is shallow: every conv layer.
            (View::GreySquare(..), _) => return self.net.layer_names(),
        };
        names.iter().map(|s| s.to_string()).collect()
    }
}

/// The face ResNet's default layers (see `visage inspect layers --model dlib-resnet`).
const FACE_DEFAULT: [&str; 4] = ["step0", "step9", "step20", "step39"];

/// Image files under `dir`, sorted, recursively.
fn image_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?;
        for e in entries {
            let path = e
                .with_context(|| format!("cannot list {}", d.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|x| x.to_str())
                .map(|x| x.to_ascii_lowercase())
                .is_some_and(|x| {
                    ["jpg", "jpeg", "png", "webp", "gif", "bmp", "pgm", "ppm"].contains(&x.as_str())
                })
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `n` items spread evenly over `v` (all of them when `n >= v.len()`).
fn spread<T: Clone>(v: &[T], n: usize) -> Vec<T> {
    if n >= v.len() {
        return v.to_vec();
    }
    (0..n).map(|i| v[i * v.len() / n].clone()).collect()
}

fn run_units(args: InspectUnitsArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let demo = matches!(args.model.model, InspectModel::Ekg | InspectModel::Volume);
    // Photos are listed before the network loads, so a wrong folder fails at once.
    let (root, files) = match (&args.images, demo) {
        (Some(_), true) => bail!("--model ekg and volume use their demo's own data; drop --images"),
        (None, false) => bail!("--images DIR is required for this model"),
        (Some(dir), false) => {
            let mut files = image_files(dir)?;
            if let Some(n) = args.limit {
                files = spread(&files, n);
            }
            if files.is_empty() {
                bail!("no images found under {}", dir.display());
            }
            (dir.clone(), files)
        }
        (None, true) => (PathBuf::new(), Vec::new()),
    };
    let loaded = Loaded::load(&args.model)?;
    let layers = loaded.layers(&args.layers)?;
    // The demo's inputs, thinned by --limit like photos; indices into them stand in for files.
    let picked: Vec<usize> = match &loaded.demo {
        Some((inputs, _)) => spread(
            &(0..inputs.len()).collect::<Vec<_>>(),
            args.limit.unwrap_or(usize::MAX),
        ),
        None => Vec::new(),
    };
    let names: Vec<String> = match &loaded.demo {
        Some((_, names)) => picked.iter().map(|&i| names[i].clone()).collect(),
        None => files
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
            .collect(),
    };
    if names.is_empty() {
        bail!("no inputs to scan");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the worker threads")?;
    let bar = ProgressBar::new(names.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} inputs ({eta} left)",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let load = |i: usize| match &loaded.demo {
        Some((inputs, _)) => Ok(inputs[picked[i]].clone()),
        None => loaded.load_input(&files[i]),
    };
    let result = pool.install(|| {
        let options = ScanOptions {
            k: TOP_K,
            interior: !args.border,
        };
        scan(
            loaded.net.as_ref(),
            &layers,
            names.len(),
            options,
            load,
            || bar.inc(1),
        )
    })?;
    bar.finish_and_clear();
    // Read before the crops reload the winning photos.
    let no_face = loaded.no_face.load(Ordering::Relaxed);
    let shown: Vec<Vec<usize>> = (0..layers.len())
        .map(|l| pick_units(&result, l, args.units))
        .collect();
    let patches = pool.install(|| collect_patches(&result, &shown, load))?;
    write_report(&args.out, loaded.name, &result, &patches, &names, args.cell)?;
    println!(
        "{} inputs ({} skipped) through {} layers of {} in {:.1} s; wrote {}",
        names.len(),
        result.skipped.len(),
        layers.len(),
        loaded.name,
        start.elapsed().as_secs_f64(),
        args.out.join("index.html").display()
    );
    if matches!(loaded.view, View::FaceChip(_)) {
        println!("{no_face} images without a detected face were used whole (resized to 150x150)");
    }
    for (i, why) in &result.skipped {
        eprintln!("skipped {}: {why}", names[*i]);
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo networks' inputs are their own data, not photographs.
fn photos_only(model: &InspectModel) -> anyhow::Result<()> {
    if matches!(model, InspectModel::Ekg | InspectModel::Volume) {
        bail!("--model ekg and volume support only `inspect units` and `inspect layers`");
    }
    Ok(())
}

fn run_activations(args: InspectActivationsArgs) -> anyhow::Result<ExitCode> {
    photos_only(&args.model.model)?;
    let loaded = Loaded::load(&args.model)?;
    let layers = loaded.layers(&args.layers)?;
    let input = loaded
        .load_input(&args.image)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.image.display()))?;
    let maps = loaded.net.activations(&input, &layers)?;
    let names = loaded.net.layer_names();
    let named: Vec<(String, _)> = layers.iter().map(|&l| names[l].clone()).zip(maps).collect();
    let img = render_activations(&named, args.channels, 64);
    save_png(&img, &args.out)?;
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn run_gram(args: InspectGramArgs) -> anyhow::Result<ExitCode> {
    photos_only(&args.model.model)?;
    let loaded = Loaded::load(&args.model)?;
    let layer = match &args.layer {
        Some(l) => loaded.net.layer_index(l)?,
        None => loaded.layers(&[])?[2],
    };
    let input = loaded
        .load_input(&args.image)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.image.display()))?;
    let maps = loaded.net.activations(&input, &[layer])?;
    let Some(map) = maps.first() else {
        bail!("the network returned no activations");
    };
    let gram = map.gram();
    let name = &loaded.net.layer_names()[layer];
    let title = format!("GRAM {name} ({} X {})", map.channels, map.channels);
    let img = render_gram(&gram, map.channels, 640, &title);
    save_png(&img, &args.out)?;
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn run_layers(args: InspectModelArgs) -> anyhow::Result<ExitCode> {
    let loaded = Loaded::load(&args)?;
    for (i, name) in loaded.net.layer_names().iter().enumerate() {
        let field = loaded.net.receptive_field(i);
        let what = loaded.net.describe_layer(i);
        println!("{name:<12} field {:<18} {what}", field.describe());
    }
    Ok(ExitCode::SUCCESS)
}
