//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Face detection, landmarks, 128-d encodings and verification with dlib's models, \
in one binary.\n\nImages: JPEG, PNG, WebP, GIF, BMP, PNM. Grayscale and RGBA images become RGB, and \
the EXIF orientation tag is applied before anything else, so boxes and landmarks are in pixels of \
the upright image.";

/// Top-level arguments.
#[derive(Debug, Parser)]
#[command(name = "visage", version, about = ABOUT)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find faces: dlib's raw boxes [left, top, right, bottom] and scores.
    Detect(FaceArgs),
    /// Find faces and their 5 landmarks (eye corners and nose base).
    Landmarks(FaceArgs),
    /// Find faces and compute their 128-d encodings.
    Encode(FaceArgs),
    /// Is the largest face in A the same person as the largest face in B?
    Verify(VerifyArgs),
    /// Show whether each model file is present and intact, or fetch them.
    Models(ModelsArgs),
    /// Time the pipeline's steps on an image (used by the side-by-side benchmark script).
    Bench(BenchArgs),
    /// Enroll a person from photos (one face each), or everyone in a folder per person.
    Enroll(EnrollArgs),
    /// Name the faces in photos from the gallery, or say "not recognized" above τ.
    Identify(IdentifyArgs),
    /// List, show, rename, remove, export or import enrolled people.
    Gallery(GalleryArgs),
    /// Choose τ from labelled pairs: ROC (FAR and FRR per τ), EER, TAR at a FAR, τ for a target FAR.
    Calibrate(CalibrateArgs),
    /// Measure accuracy on a benchmark: LFW View 2, or open-set identification.
    Eval(EvalArgs),
    /// Classical baselines: eigenfaces, Fisherfaces, SVM and nearest neighbour (train, eval).
    Classical(ClassicalArgs),
    /// Worked examples of the nn ops: heartbeats in an EKG (1-D CNN), lesions in volumes (3-D CNN).
    Demo(DemoArgs),
    /// Look inside a CNN: the top-9 patches of each unit, feature maps, Gram matrices.
    Inspect(InspectArgs),
}

/// Where the models are.
#[derive(Debug, Args, Clone)]
pub struct ModelsDir {
    /// Models directory (holds dlib/...); defaults to $VISAGE_MODELS.
    #[arg(long, value_name = "DIR", global = true)]
    pub models: Option<PathBuf>,
}

/// How images are read and faces detected.
#[derive(Debug, Args, Clone)]
pub struct DetectArgs {
    /// Times the image is doubled in size before detection (finds smaller faces, slower).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=4))]
    pub upsample: u32,
    /// Added to the detector's thresholds: negative finds more (and less certain) faces.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub adjust_threshold: f64,
    /// Largest image accepted, in pixels (width x height), checked before decoding.
    #[arg(long, default_value_t = visage_image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// Arguments of detect, landmarks and encode.
#[derive(Debug, Args)]
pub struct FaceArgs {
    /// Image files.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// One JSON object per line, one line per image.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of verify.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// First image.
    pub a: PathBuf,
    /// Second image.
    pub b: PathBuf,
    /// Largest Euclidean distance between encodings still called the same person.
    #[arg(long, default_value_t = 0.6)]
    pub threshold: f32,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of models.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// fetch: copy or download missing or altered files into the models directory.
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
    /// Print the state as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
}

/// What `visage models` can do besides showing the state.
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Copy from a directory, or download from an http(s) base address, each missing or altered
    /// model file, and verify its SHA-256 before it is put in place.
    Fetch {
        /// A directory laid out like the models directory, or a base URL; defaults to each
        /// file's own download address.
        #[arg(long, value_name = "DIR_OR_URL")]
        from: Option<String>,
    },
}

/// Arguments of bench.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Image to time the pipeline on.
    pub image: PathBuf,
    /// Repetitions of each step (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Which gallery file.
#[derive(Debug, Args, Clone)]
pub struct DbArg {
    /// Gallery database file; defaults to $VISAGE_DB, else gallery.sqlite in the user's data
    /// directory (e.g. ~/.local/share/visage/).
    #[arg(long, value_name = "PATH", env = "VISAGE_DB", global = true)]
    pub db: Option<PathBuf>,
}

/// The encoding cache of calibrate and eval.
#[derive(Debug, Args, Clone)]
pub struct CacheArgs {
    /// Encoding cache file (keyed by image path, size, time, models and face choice); defaults
    /// to encodings.sqlite in the user's cache directory.
    #[arg(long, value_name = "FILE")]
    pub cache: Option<PathBuf>,
    /// Encode every image again and store nothing.
    #[arg(long, conflicts_with = "cache")]
    pub no_cache: bool,
}

/// Arguments of enroll.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The person's name.
    #[arg(required_unless_present = "from_dir")]
    pub name: Option<String>,
    /// Photos of that person; each must show exactly one face (or use --largest). All are
    /// stored in one transaction, or none if any photo is unusable.
    #[arg(value_name = "IMAGE", required_unless_present = "from_dir")]
    pub images: Vec<PathBuf>,
    /// Enroll a folder holding one sub-folder of photos per person, named after the sub-folder:
    /// one transaction per person; people already enrolled are skipped, so an interrupted run
    /// can simply be repeated.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["name", "images", "append"])]
    pub from_dir: Option<PathBuf>,
    /// Take the largest face of photos that show several.
    #[arg(long)]
    pub largest: bool,
    /// Add the photos to a person who is already enrolled.
    #[arg(long)]
    pub append: bool,
    /// Print JSON (one object per person).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Search structure for identify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexChoice {
    /// Exact below 50,000 templates, HNSW above.
    Auto,
    /// Scan every template.
    Exact,
    /// Approximate search through the HNSW graph (cached in the gallery file).
    Hnsw,
}

/// Arguments of identify.
#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Photos to identify; every face in each is reported.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Candidates listed per face (distinct people, nearest first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub top: u32,
    /// τ for this run (Euclidean distance); defaults to the gallery's.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Search structure.
    #[arg(long, value_enum, default_value_t = IndexChoice::Auto)]
    pub index: IndexChoice,
    /// One JSON object per line, one line per image.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of gallery.
#[derive(Debug, Args)]
pub struct GalleryArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: GalleryAction,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
}

/// The gallery subcommands.
#[derive(Debug, Subcommand)]
pub enum GalleryAction {
    /// Everyone enrolled, with the gallery's models and τ.
    List,
    /// One person's templates (source image hash, box, time).
    Show {
        /// The person's name.
        name: String,
    },
    /// Rename a person.
    Rename {
        /// Current name.
        old: String,
        /// New name (must be free).
        new: String,
    },
    /// Remove a person and their templates.
    Remove {
        /// The person's name.
        name: String,
    },
    /// Write the whole gallery as JSON ("-": standard output).
    Export {
        /// Output file.
        file: PathBuf,
    },
    /// Add everyone from an export (same models; no name may clash). All or nothing.
    Import {
        /// Export file.
        file: PathBuf,
    },
}

/// Arguments of calibrate.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Labelled pairs in LFW's pairs.txt layout (with --images).
    #[arg(long, value_name = "FILE", requires = "images", conflicts_with = "dir")]
    pub pairs: Option<PathBuf>,
    /// Image root of --pairs (holding Name/Name_0001.jpg).
    #[arg(long, value_name = "DIR", requires = "pairs")]
    pub images: Option<PathBuf>,
    /// A folder with one sub-folder of photos per person, from which pairs are drawn.
    #[arg(long, value_name = "DIR", required_unless_present = "pairs")]
    pub dir: Option<PathBuf>,
    /// Genuine pairs drawn per person from --dir (as many impostor pairs in all).
    #[arg(long, default_value_t = 10)]
    pub pairs_per_person: usize,
    /// The FAR to choose τ for (fraction of impostor pairs accepted).
    #[arg(long, default_value_t = 1e-3)]
    pub target_far: f64,
    /// Store the chosen τ in the gallery.
    #[arg(long)]
    pub save: bool,
    /// Write the ROC as a PNG plot.
    #[arg(long, value_name = "PNG")]
    pub plot: Option<PathBuf>,
    /// Write the full report (ROC points included) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of eval.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub which: EvalCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// LFW View 2: 10 folds, τ chosen on 9, accuracy on the 10th.
    Lfw(EvalLfwArgs),
    /// Open-set identification on a folder per person.
    Identify(EvalIdentifyArgs),
}

/// Arguments of eval lfw.
#[derive(Debug, Args)]
pub struct EvalLfwArgs {
    /// pairs.txt.
    #[arg(long, value_name = "FILE")]
    pub pairs: PathBuf,
    /// The image root (Name/Name_0001.jpg).
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the ROC as a PNG plot.
    #[arg(long, value_name = "PNG")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of eval identify.
#[derive(Debug, Args)]
pub struct EvalIdentifyArgs {
    /// A folder with one sub-folder of photos per person (e.g. LFW's images).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// τ values to report (Euclidean distances), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.55,0.6")]
    pub threshold: Vec<f32>,
    /// Use only the first N people (by folder name).
    #[arg(long, value_name = "N")]
    pub max_people: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of classical.
#[derive(Debug, Args)]
pub struct ClassicalArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ClassicalAction,
}

/// The classical subcommands.
#[derive(Debug, Subcommand)]
pub enum ClassicalAction {
    /// Train on a face set's training split; save the model and, optionally, pictures.
    Train(ClassicalTrainArgs),
    /// Identification accuracy on a face set's test split, or verification accuracy on LFW
    /// pairs (10 folds: trained and thresholded on 9, tested on the 10th).
    Eval(ClassicalEvalArgs),
}

/// A classical method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassicalMethod {
    /// PCA, then nearest neighbour.
    Eigenfaces,
    /// PCA to N − C, LDA, then nearest neighbour.
    Fisherfaces,
    /// Support vector machine (one-vs-rest; on LFW: on |a − b| of the pair).
    Svm,
    /// Nearest neighbour (on LFW: distance threshold).
    Nn,
}

/// What svm and nn classify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassicalFeatures {
    /// Gray pixel intensities.
    Pixels,
    /// PCA projections of the pixels.
    Pca,
    /// LDA (Fisherfaces) projections of the pixels.
    Lda,
    /// dlib's 128-d face encodings (needs the face models).
    Dlib,
}

/// SVM kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassicalKernel {
    /// a·b.
    Linear,
    /// exp(−γ|a − b|²).
    Rbf,
}

/// Nearest-neighbour distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassicalMetric {
    /// Euclidean distance.
    Euclidean,
    /// 1 − cosine similarity.
    Cosine,
}

/// The method and its settings.
#[derive(Debug, Args, Clone)]
pub struct ClassicalMethodArgs {
    /// The method (not needed by eval --model).
    #[arg(long, value_enum)]
    pub method: Option<ClassicalMethod>,
    /// Features for svm and nn (eigenfaces and fisherfaces always use pixels).
    #[arg(long, value_enum, default_value_t = ClassicalFeatures::Pixels)]
    pub features: ClassicalFeatures,
    /// PCA components, or LDA directions for fisherfaces and --features lda; default: all
    /// (N − 1 for PCA, C − 1 for LDA).
    #[arg(long, value_name = "K")]
    pub components: Option<usize>,
    /// SVM kernel.
    #[arg(long, value_enum, default_value_t = ClassicalKernel::Linear)]
    pub kernel: ClassicalKernel,
    /// SVM box constraint C.
    #[arg(long, default_value_t = 1.0)]
    pub svm_c: f64,
    /// RBF γ, in inverse feature units squared; default 1 / (dim × variance of the features).
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Nearest-neighbour distance.
    #[arg(long, value_enum, default_value_t = ClassicalMetric::Euclidean)]
    pub metric: ClassicalMetric,
}

/// The face set and its split.
#[derive(Debug, Args, Clone)]
pub struct ClassicalDataArgs {
    /// Face set: one sub-folder per person (ORL), or files named person.condition (Yale).
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// Training images per person; the others are test images.
    #[arg(long, default_value_t = 5)]
    pub train_per_person: usize,
    /// Seed of the train/test split.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Resize every image to WIDTHxHEIGHT pixels (default: the first image's size; on LFW
    /// pairs, 32x32 after the crop).
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// Refuse a set whose images differ in size instead of resizing them.
    #[arg(long, conflicts_with = "size")]
    pub refuse_mixed_sizes: bool,
}

/// Arguments of classical train.
#[derive(Debug, Args)]
pub struct ClassicalTrainArgs {
    #[command(flatten)]
    pub method: ClassicalMethodArgs,
    #[command(flatten)]
    pub data: ClassicalDataArgs,
    /// Where to save the model.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write mean face + eigenfaces, Fisherfaces and reconstruction PNGs into this folder.
    #[arg(long, value_name = "DIR")]
    pub pictures: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of classical eval.
#[derive(Debug, Args)]
pub struct ClassicalEvalArgs {
    #[command(flatten)]
    pub method: ClassicalMethodArgs,
    #[command(flatten)]
    pub data: ClassicalDataArgs,
    /// Evaluate this saved model on the set's test split instead of training one.
    #[arg(long, value_name = "FILE", conflicts_with = "pairs")]
    pub model: Option<PathBuf>,
    /// LFW pairs.txt: verification mode (with --images).
    #[arg(
        long,
        value_name = "FILE",
        requires = "images",
        conflicts_with = "dataset"
    )]
    pub pairs: Option<PathBuf>,
    /// Image root of --pairs (Name/Name_0001.jpg).
    #[arg(long, value_name = "DIR", requires = "pairs")]
    pub images: Option<PathBuf>,
    /// Side of the central square cut from each LFW image before resizing, in pixels.
    #[arg(long, default_value_t = 120)]
    pub crop: u32,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write the full report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// `visage demo`: which example to run.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The example.
    #[command(subcommand)]
    pub demo: DemoKind,
}

/// The worked examples.
#[derive(Debug, Subcommand)]
pub enum DemoKind {
    /// Pan–Tompkins labels the first 4 minutes of an EKG; a 1-D CNN trained on them finds the
    /// beats of the last minute (F1 against Pan–Tompkins, heart rate, plot).
    Ekg(DemoEkgArgs),
    /// A 3-D CNN tells apart synthetic CT-like volumes with round or elongated lesions.
    Volume(DemoVolumeArgs),
}

/// `visage demo ekg`.
#[derive(Debug, Args)]
pub struct DemoEkgArgs {
    /// The recording: one value in millivolts per line at 360 Hz; defaults to
    /// $VISAGE_SHARED/data/ekg/mitbih_208_360hz_mv.csv (VISAGE_SHARED defaults to ../shared).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Seed for the weights and the training crops.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Training steps (mini-batches of 16 four-second crops).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Threads (results are deterministic for a seed and a thread count).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Where to save the plot of the held-out minute.
    #[arg(long, value_name = "PNG", default_value = "ekg_detections.png")]
    pub plot: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `visage demo volume`.
#[derive(Debug, Args)]
pub struct DemoVolumeArgs {
    /// Seed for the volumes, the weights and the training order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Training volumes.
    #[arg(long, default_value_t = 512)]
    pub train: usize,
    /// Held-out volumes.
    #[arg(long, default_value_t = 200)]
    pub test: usize,
    /// Passes over the training volumes.
    #[arg(long, default_value_t = 16)]
    pub epochs: usize,
    /// Threads (results are deterministic for a seed and a thread count).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Where to save slices and activations.
    #[arg(long, value_name = "PNG", default_value = "volume_activations.png")]
    pub picture: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `visage inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// What to look at.
    #[command(subcommand)]
    pub action: InspectAction,
}

/// The inspect subcommands.
#[derive(Debug, Subcommand)]
pub enum InspectAction {
    /// Stream images through a network; for each unit of the chosen layers keep its 9 strongest
    /// responses and draw their receptive fields (PNG grid per layer, HTML page, JSON).
    Units(InspectUnitsArgs),
    /// The feature maps of chosen layers for one image, as a grid.
    Activations(InspectActivationsArgs),
    /// A layer's Gram matrix G[k][k'] = Σ_ij a_ijk a_ijk' for one image, as a heat map.
    Gram(InspectGramArgs),
    /// List a network's layers with their receptive fields.
    Layers(InspectModelArgs),
}

/// A network to inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectModel {
    /// dlib's face ResNet (inputs: aligned 150x150 face chips).
    DlibResnet,
    /// torchvision's ImageNet MobileNetV2 (inputs: 224x224 centre squares).
    MobilenetV2,
    /// The 1-D CNN of `visage demo ekg`, trained afresh (~3 s, seed 1); inputs: 2 s windows of
    /// the held-out minute of the recording (`--csv`), at 180 Hz. Takes no `--images`.
    Ekg,
    /// The 3-D CNN of `visage demo volume`, trained afresh (~30 s, seed 1); inputs: its 200
    /// held-out synthetic 24³ volumes. Takes no `--images`.
    Volume,
}

/// Which network, and where its weights are.
#[derive(Debug, Args, Clone)]
pub struct InspectModelArgs {
    /// The network.
    #[arg(long, value_enum)]
    pub model: InspectModel,
    /// MobileNetV2 weights (torchvision .pth); defaults to MODELS/mobilenet_v2/mobilenet_v2-b0353104.pth.
    #[arg(long, value_name = "PTH")]
    pub weights: Option<PathBuf>,
    /// The EKG recording for `--model ekg` (as `visage demo ekg`); defaults to
    /// $VISAGE_SHARED/data/ekg/mitbih_208_360hz_mv.csv (VISAGE_SHARED defaults to ../shared).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    #[command(flatten)]
    pub models: ModelsDir,
}

/// `visage inspect units`.
#[derive(Debug, Args)]
pub struct InspectUnitsArgs {
    #[command(flatten)]
    pub model: InspectModelArgs,
    /// Layers, comma-separated (names from `visage inspect layers`, or their numbers).
    #[arg(long, value_delimiter = ',', required = true)]
    pub layers: Vec<String>,
    /// Folder of images (searched recursively); required for the image networks, not taken by
    /// `ekg` and `volume`, which use their demo's own seeded held-out data.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Output folder: one PNG per layer, index.html, units.json.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Units drawn per layer (those with the strongest responses); the JSON lists all.
    #[arg(long, default_value_t = 16)]
    pub units: usize,
    /// Use at most this many images, spread evenly over the sorted list.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Side of each patch in the grids, pixels.
    #[arg(long, default_value_t = 48)]
    pub cell: u32,
    /// Also rank positions whose receptive field reaches into the padding past the image border
    /// (by default only fields inside the image count, as far as they fit).
    #[arg(long)]
    pub border: bool,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `visage inspect activations`.
#[derive(Debug, Args)]
pub struct InspectActivationsArgs {
    #[command(flatten)]
    pub model: InspectModelArgs,
    /// The image.
    #[arg(long, value_name = "IMAGE")]
    pub image: PathBuf,
    /// Layers, comma-separated (default: four depths).
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<String>,
    /// Channels drawn per layer.
    #[arg(long, default_value_t = 32)]
    pub channels: usize,
    /// Output PNG.
    #[arg(short = 'o', long = "out", value_name = "PNG")]
    pub out: PathBuf,
}

/// `visage inspect gram`.
#[derive(Debug, Args)]
pub struct InspectGramArgs {
    #[command(flatten)]
    pub model: InspectModelArgs,
    /// The image.
    #[arg(long, value_name = "IMAGE")]
    pub image: PathBuf,
    /// The layer (default: a middle one).
    #[arg(long)]
    pub layer: Option<String>,
    /// Output PNG.
    #[arg(short = 'o', long = "out", value_name = "PNG")]
    pub out: PathBuf,
}
