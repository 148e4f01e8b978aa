//! The command line, as clap sees it.

use std::path::{Path, PathBuf};

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
    /// Learn a similarity function: triplet loss, pair head, prototypical networks.
    Train(TrainArgs),
    /// Few-shot evaluation: N-way one-shot accuracy on Omniglot runs, and building runs.
    Fewshot(FewshotArgs),
    /// Neural style transfer by optimisation: CONTENT painted in the style of STYLE... (costs of
    /// Gatys et al., MobileNetV2 or VGG19, L-BFGS or Adam).
    Style(StyleArgs),
    /// Feed-forward style transfer: 26 built-in styles (and blends) or any picture's style, in one pass.
    Stylize(StylizeArgs),
    /// The HTTP service and web page: identify, verify, enroll and manage people over a gallery
    /// in SQLite or PostgreSQL.
    Serve(ServeArgs),
    /// The service's API keys: create (shown once, stored hashed), list, revoke.
    Keys(KeysArgs),
    /// The compute devices this build can use; with --check, GPU parity tests and benchmarks.
    Device(DeviceCheckArgs),
}

/// Arguments of device.
#[derive(Debug, Args)]
pub struct DeviceCheckArgs {
    /// Run the GPU parity tests (encodings, a style run's loss curve, a training step) and the
    /// benchmarks, and print one table.
    #[arg(long)]
    pub check: bool,
    /// Photos whose largest faces make the chips of the encoding tests (default: synthetic
    /// chips).
    #[arg(long, value_name = "IMAGE", num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Chips encoded in the encoding benchmark (the faces found, repeated).
    #[arg(long, default_value_t = 1024)]
    pub chips: usize,
    /// Timed repetitions of each benchmark (after one untimed warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Which parts to run: encodings, style (both networks), style-mobilenet, style-vgg19,
    /// training (comma-separated; default all).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "encodings,style,training"
    )]
    pub only: Vec<String>,
    /// Image sides, in pixels, of the Gatys iterations timed.
    #[arg(long, value_delimiter = ',', default_value = "512,1024")]
    pub sizes: Vec<usize>,
    /// Iterations of the style parity test, run on both devices at the first of `--sizes` (so
    /// the GPU compiles and tunes its kernels for that size once); 0 skips the test.
    #[arg(long, default_value_t = 4)]
    pub parity_iterations: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
}

/// Where the models are.
#[derive(Debug, Args, Clone)]
pub struct ModelsDir {
    /// Models directory (holds dlib/...); defaults to $VISAGE_MODELS.
    #[arg(long, value_name = "DIR", global = true)]
    pub models: Option<PathBuf>,
}

/// Where the network runs.
#[derive(Debug, Args, Clone, Copy)]
pub struct DeviceArg {
    /// Where networks run: cpu, or gpu (a build with `--features gpu` and a Vulkan driver).
    #[arg(long, default_value = "cpu", value_name = "cpu|gpu", value_parser = parse_compute)]
    pub device: visage_nn::Compute,
}

fn parse_compute(s: &str) -> Result<visage_nn::Compute, String> {
    s.parse().map_err(|e: visage_nn::NnError| e.to_string())
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
    #[command(flatten)]
    pub device: DeviceArg,
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
    /// Which files: the face models, or the feed-forward style networks of `visage stylize`.
    #[arg(long, value_enum, default_value_t = ModelSet::Faces, global = true)]
    pub set: ModelSet,
    /// Print the state as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
}

/// A set of model files, each with its own manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelSet {
    /// Detector, landmarks and encoder (every face command).
    Faces,
    /// The networks of `visage stylize` (../shared/models/fast_style).
    FastStyle,
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
    #[command(flatten)]
    pub device: DeviceArg,
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
    #[command(flatten)]
    pub device: DeviceArg,
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

/// A network to inspect: a name, or the path of a `visage train` checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectModel {
    /// `dlib-resnet`: dlib's face ResNet (inputs: aligned 150x150 face chips).
    DlibResnet,
    /// `mobilenet-v2`: torchvision's ImageNet MobileNetV2 (inputs: 224x224 centre squares).
    MobilenetV2,
    /// `vgg19`: torchvision's VGG19 with the weights of `--weights` (inputs: 224x224 centre
    /// squares).
    Vgg19,
    /// `ekg`: the 1-D CNN of `visage demo ekg`, trained afresh (~3 s, seed 1); inputs: 2 s
    /// windows of the held-out minute of the recording (`--csv`), at 180 Hz. Takes no `--images`.
    Ekg,
    /// `volume`: the 3-D CNN of `visage demo volume`, trained afresh (~30 s, seed 1); inputs:
    /// its 200 held-out synthetic 24³ volumes. Takes no `--images`.
    Volume,
    /// An embedding network saved by `visage train` (inputs: grey images at its side).
    Checkpoint(PathBuf),
}

impl std::str::FromStr for InspectModel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "dlib-resnet" => Self::DlibResnet,
            "mobilenet-v2" => Self::MobilenetV2,
            "vgg19" => Self::Vgg19,
            "ekg" => Self::Ekg,
            "volume" => Self::Volume,
            path if Path::new(path).is_file() => Self::Checkpoint(PathBuf::from(path)),
            other => {
                return Err(format!(
                    "{other:?} is neither a network (dlib-resnet, mobilenet-v2, vgg19, ekg, \
                     volume) nor a checkpoint file"
                ))
            }
        })
    }
}

/// Which network, and where its weights are.
#[derive(Debug, Args, Clone)]
pub struct InspectModelArgs {
    /// The network: dlib-resnet, mobilenet-v2, vgg19, ekg, volume, or the path of a
    /// `visage train` checkpoint.
    #[arg(long, value_name = "NAME|CHECKPOINT")]
    pub model: InspectModel,
    /// MobileNetV2 or VGG19 weights (torchvision .pth, or .safetensors for VGG19); MobileNetV2
    /// defaults to MODELS/mobilenet_v2/mobilenet_v2-b0353104.pth.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// VGG19 without `--weights`: random weights (receptive fields and shapes, not meaning).
    #[arg(long)]
    pub random_weights: bool,
    /// The EKG recording for `--model ekg` (as `visage demo ekg`); defaults to
    /// $VISAGE_SHARED/data/ekg/mitbih_208_360hz_mv.csv (VISAGE_SHARED defaults to ../shared).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    #[command(flatten)]
    pub models: ModelsDir,
    // Where MobileNetV2 and VGG19 run; the other networks run on the CPU.
    #[command(flatten)]
    pub device: DeviceArg,
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

/// Arguments of train.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// What to train.
    #[command(subcommand)]
    pub which: TrainCommand,
}

/// The train subcommands.
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Learn a similarity on Omniglot: triplet loss, pair head (Koch), prototypical networks or a cosine classifier.
    Omniglot(TrainOmniglotArgs),
    /// Fit the pair head on frozen dlib encodings over LFW's 10 folds, against the plain threshold.
    LfwHead(TrainLfwHeadArgs),
    /// Train an embedding on small grey LFW face chips of 9 folds' people; test on the 10th fold.
    Faces(TrainFacesArgs),
}

/// Training options shared by `train omniglot` and `train faces`.
#[derive(Debug, Args)]
pub struct TrainingOptions {
    /// Optimizer steps (default: the method's, see docs/TRAINING.md).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Adam's initial learning rate (cosine decay to 5% of it; default 2e-3 for proto, 1e-3 for the
    /// other methods).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Classes per batch (P; N ways for proto).
    #[arg(long)]
    pub classes_per_batch: Option<usize>,
    /// Images per class in a batch (K; shots + queries for proto).
    #[arg(long)]
    pub images_per_class: Option<usize>,
    /// Support images per class in an episode (proto).
    #[arg(long, default_value_t = 1)]
    pub shots: usize,
    /// Triplet miner: all, semi-hard, batch-hard or hardest (batch-hard can collapse, see docs/TRAINING.md).
    #[arg(long, default_value = "semi-hard")]
    pub miner: String,
    /// Triplet margin α (squared distances between unit-length embeddings).
    #[arg(long, default_value_t = 0.2)]
    pub margin: f32,
    /// Do not scale triplet embeddings to unit length.
    #[arg(long)]
    pub no_normalize: bool,
    /// Pair-head features: abs (|Δ|), chi2 (χ²) or both.
    #[arg(long, default_value = "abs")]
    pub features: String,
    /// Scale of the classifier's logits s·cos(f, w) (classify).
    #[arg(long, default_value_t = 10.0)]
    pub scale: f32,
    /// Parts each batch is split into and run side by side (proto and classify; default 2; the
    /// results depend on it, not on --threads).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool).
    #[arg(long, default_value_t = 4)]
    pub blocks: usize,
    /// Channels per block.
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// Channels of the last block, the embedding's depth (default: 256 for proto on Omniglot,
    /// else --channels).
    #[arg(long)]
    pub last_channels: Option<usize>,
    /// How the last block pools its map: `halve` (2x2, as every block; at 28 pixels its 3x3
    /// map loses a row and a column), `global` (the maximum over the whole map) or `keep`
    /// (no pooling: the whole map flattened, channels x 9 values at 28 pixels); default: global
    /// for proto, else halve.
    #[arg(long, value_name = "halve|global|keep")]
    pub last_pool: Option<visage_train::model::LastPool>,
    /// How the blocks that halve their map pool it: `max` (2x2 max pooling, stride 2) or
    /// `blurred` (2x2 max pooling at stride 1, then a [1 2 1]x[1 2 1]/16 blur sampled every
    /// other pixel: a drawing moved by a pixel changes the embedding less, at about 1.4x the
    /// time per step); default: blurred for proto, else max.
    #[arg(long, value_name = "max|blurred")]
    pub pooling: Option<visage_train::model::Pooling>,
    /// Do not distort training images (small random affine maps, and flips for faces).
    #[arg(long, conflicts_with = "distortion")]
    pub no_augment: bool,
    /// Scale every range of the random distortions, the warp's included, by this factor (1:
    /// the defaults).
    #[arg(long, value_name = "FACTOR")]
    pub distortion: Option<f64>,
    /// Bend every training image by a smooth random warp whose displacements have this root
    /// mean square, as a fraction of the side (default: 0.06 for proto on Omniglot, else 0;
    /// 0: none; taken as given, not scaled by --distortion).
    #[arg(long, value_name = "FRACTION", conflicts_with = "no_augment")]
    pub elastic: Option<f64>,
    /// Standard deviation of the Gaussian that smooths the warp, as a fraction of the side
    /// (default 0.12).
    #[arg(long, value_name = "FRACTION", conflicts_with = "no_augment")]
    pub elastic_smoothing: Option<f64>,
    /// Seed of initialisation, sampling and augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Arguments of train omniglot.
#[derive(Debug, Args)]
pub struct TrainOmniglotArgs {
    /// Omniglot set to train on (<alphabet>/<character>/*.png), e.g. ../shared/data/omniglot/images_background_small1.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Output directory: model.safetensors, optimizer.bpk, summary.json, curve.png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// triplet (Siamese, triplet loss), pair (twin network + pair head, Koch), proto (prototypical networks) or classify (cosine classifier over the training classes, Baseline++).
    #[arg(long, default_value = "proto", value_parser = ["triplet", "pair", "proto", "classify"])]
    pub method: String,
    /// Input side in pixels (the 105-pixel images are shrunk to it).
    #[arg(long, default_value_t = 28)]
    pub side: usize,
    /// Do not add rotated characters (90/180/270°) as new classes.
    #[arg(long)]
    pub no_rotations: bool,
    /// Also add every character (and its rotations) mirrored left-right as new classes (the
    /// default for proto).
    #[arg(long, conflicts_with = "no_mirrors")]
    pub mirrors: bool,
    /// Do not add mirrored characters.
    #[arg(long)]
    pub no_mirrors: bool,
    /// Draw each batch's classes from one alphabet (with its rotated and mirrored copies), like
    /// the one-shot runs (the default for proto).
    #[arg(long, conflicts_with = "mixed_alphabets")]
    pub within_alphabet: bool,
    /// Draw each batch's classes from all the alphabets together (the default of the other methods).
    #[arg(long)]
    pub mixed_alphabets: bool,
    /// How each drawing is placed in the frame before it is shrunk: `centred` (the ink's
    /// centroid moved to the centre and the drawing scaled to a fixed radius of gyration; the
    /// default for proto) or `as-drawn` (the default of the other methods). Evaluation frames
    /// images as the model was trained.
    #[arg(long, value_parser = ["centred", "as-drawn"])]
    pub framing: Option<String>,
    /// With centred framing: the ink's radius of gyration, as a fraction of the side (default 0.31).
    #[arg(long, value_name = "FRACTION")]
    pub ink_radius: Option<f64>,
    /// Continue from this checkpoint (its settings apply; --steps sets the new total).
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Steps between checkpoints (0: only at the end).
    #[arg(long, default_value_t = 250)]
    pub checkpoint_every: usize,
    /// Stop as soon as the collapse guard fires.
    #[arg(long)]
    pub stop_on_collapse: bool,
    #[command(flatten)]
    pub training: TrainingOptions,
}

/// Arguments of train faces.
#[derive(Debug, Args)]
pub struct TrainFacesArgs {
    /// LFW pairs.txt (View 2: 10 folds of 300 same + 300 different pairs).
    #[arg(long, value_name = "FILE")]
    pub pairs: PathBuf,
    /// The image root (Name/Name_0001.jpg).
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Output directory: model.safetensors, summary.json (with the LFW result), curve.png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The held-out fold (1-based); training people come from the other folds' pairs.
    #[arg(long, default_value_t = 10)]
    pub test_fold: usize,
    /// Train one model per fold (into OUT/fold-NN) and report the mean ± std over all folds.
    #[arg(long, conflicts_with = "test_fold")]
    pub all_folds: bool,
    /// triplet (Siamese, triplet loss), pair (twin network + pair head), proto or classify;
    /// every method is tested by the squared distance between embeddings.
    #[arg(long, default_value = "triplet", value_parser = ["triplet", "pair", "proto", "classify"])]
    pub method: String,
    /// Chip side in pixels (the aligned 150x150 chip, in grey, is shrunk to it).
    #[arg(long, default_value_t = 32)]
    pub side: usize,
    /// Folder of the grey-chip cache; defaults to chips/ in the user's cache directory.
    #[arg(long, value_name = "DIR")]
    pub chips: Option<PathBuf>,
    #[command(flatten)]
    pub training: TrainingOptions,
    /// The encoding cache `visage eval lfw` fills: the dlib baseline is read from it when every
    /// image is there (never computed here); --no-cache also bypasses the chip cache.
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Arguments of train lfw-head.
#[derive(Debug, Args)]
pub struct TrainLfwHeadArgs {
    /// pairs.txt.
    #[arg(long, value_name = "FILE")]
    pub pairs: PathBuf,
    /// The image root (Name/Name_0001.jpg).
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Pair-head features: abs (|Δ|), chi2 (χ²) or both; several comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "abs,chi2,both")]
    pub features: Vec<String>,
    /// Full-batch Adam steps per fold.
    #[arg(long, default_value_t = 300)]
    pub epochs: usize,
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

/// Arguments of fewshot.
#[derive(Debug, Args)]
pub struct FewshotArgs {
    /// What to do.
    #[command(subcommand)]
    pub which: FewshotCommand,
}

/// The fewshot subcommands.
#[derive(Debug, Subcommand)]
pub enum FewshotCommand {
    /// N-way one-shot accuracy over runs in the standard Omniglot layout (runNN/class_labels.txt).
    Eval(FewshotEvalArgs),
    /// Draw runs in the standard layout from alphabets not trained on.
    BuildRuns(FewshotBuildRunsArgs),
}

/// Arguments of fewshot eval.
#[derive(Debug, Args)]
pub struct FewshotEvalArgs {
    /// Directory holding runNN/ directories.
    #[arg(long, value_name = "DIR")]
    pub runs: PathBuf,
    /// A checkpoint written by `visage train omniglot`; several (repeat the flag or list them)
    /// vote together, each one's scores turned into probabilities over the run's classes and
    /// multiplied.
    #[arg(long, value_name = "CKPT", num_args = 1.., required = true)]
    pub model: Vec<PathBuf>,
    /// Embed every image as the mean over its copies shifted by up to this many pixels each
    /// way, (2N+1)² copies (test-time augmentation; 0 = off).
    #[arg(long, default_value_t = 0, value_name = "PIXELS")]
    pub shifts: usize,
    /// Compare every pair under this many symmetries of the square, scores summed: 1 (as
    /// drawn), 4 (quarter turns) or 8 (and mirrors); both images are turned together.
    #[arg(long, default_value_t = 1, value_name = "1|4|8")]
    pub symmetries: usize,
    /// Crowding scaling: each class's squared distances are divided by the mean squared
    /// distance from its training image to this many nearest other training images of the
    /// run, raised to --crowding-power.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub crowding_neighbours: usize,
    /// The exponent of crowding scaling (0 = plain nearest neighbour); the figure without
    /// the scaling is printed too.
    #[arg(long, default_value_t = 0.5, value_name = "POWER")]
    pub crowding_power: f32,
    /// Whiten every model's embeddings by the within-class scatter of the characters in this
    /// Omniglot set (normally the training set: how its drawers vary), fitted under the same
    /// shifts and symmetries as the evaluation, before any distance.
    #[arg(long, value_name = "DIR")]
    pub whiten_from: Option<PathBuf>,
    /// Shrinkage of that scatter toward a multiple of the identity, above 0 to 1 (1 = plain
    /// distances).
    #[arg(long, default_value_t = visage_train::whitening::Whitening::DEFAULT_SHRINKAGE, value_name = "FRACTION")]
    pub whiten_shrinkage: f64,
    /// Also write every test item given the wrong class to this file: a header, then one
    /// tab-separated line each of the run, the test item, the training image of its own class
    /// and that of the class it was given (paths relative to --runs).
    #[arg(long, value_name = "FILE")]
    pub mistakes: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of fewshot build-runs.
#[derive(Debug, Args)]
pub struct FewshotBuildRunsArgs {
    /// Omniglot set to draw from, e.g. ../shared/data/omniglot/images_background_small2.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Leave out the alphabets of this training set.
    #[arg(long, value_name = "DIR")]
    pub exclude_alphabets_of: Option<PathBuf>,
    /// Output directory (created; must not hold runs yet).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of runs.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Classes per run.
    #[arg(long, default_value_t = 20)]
    pub ways: usize,
    /// Seed of the draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Draw each run's characters from all the alphabets together (an easier task than the
    /// standard one, whose runs stay within one alphabet).
    #[arg(long)]
    pub across_alphabets: bool,
}

/// The loss network of `visage style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StyleNetwork {
    /// torchvision's ImageNet MobileNetV2 (MODELS/mobilenet_v2/mobilenet_v2-b0353104.pth).
    MobilenetV2,
    /// VGG19 in torchvision's layout; weights from --weights (.pth or .safetensors).
    Vgg19,
}

/// The optimiser of `visage style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StyleOptimizer {
    /// L-BFGS: one iteration is one line search (one or more evaluations).
    Lbfgs,
    /// Adam on the pixels.
    Adam,
}

/// Where the generated image starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StyleInit {
    /// Seeded white noise (see --seed).
    Noise,
    /// The content image.
    Content,
}

/// Softmax over activations before the losses (Wang et al. 2021).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StyleSmoothing {
    /// The network's default (off for both; see docs/STYLE.md).
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// Arguments of `visage style`.
#[derive(Debug, Args)]
pub struct StyleArgs {
    /// The content photo.
    #[arg(value_name = "CONTENT")]
    pub content: PathBuf,
    /// One or more style images (blended, see --style-weights).
    #[arg(value_name = "STYLE", required = true)]
    pub styles: Vec<PathBuf>,
    /// Output image (PNG or JPEG by extension).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// The loss network.
    #[arg(long, value_enum, default_value_t = StyleNetwork::MobilenetV2)]
    pub network: StyleNetwork,
    /// Weights file (MobileNetV2: defaults to MODELS/mobilenet_v2/mobilenet_v2-b0353104.pth;
    /// VGG19: required unless --random-weights).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Random VGG19 weights: for timing and tests only, the picture means nothing.
    #[arg(long)]
    pub random_weights: bool,
    /// Layer of J_content (features.N; VGG19 also takes names such as relu4_2). Default:
    /// features.7 (MobileNetV2), relu4_2 (VGG19).
    #[arg(long, value_name = "LAYER")]
    pub content_layer: Option<String>,
    /// Style layers with their λ, comma-separated LAYER[:λ] (λ defaults to 1). Default:
    /// features.1,3,6,10,13 (MobileNetV2), relu1_1,2_1,3_1,4_1,5_1 (VGG19), λ 1 each.
    #[arg(long, value_name = "LIST")]
    pub style_layers: Option<String>,
    /// Weight α of J_content.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Weight β of J_style.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Weight of the squared total variation (pixels on a 0..1 scale).
    #[arg(long, value_name = "WEIGHT")]
    pub tv: Option<f64>,
    /// Softmax over activations before the losses.
    #[arg(long, value_enum, default_value_t = StyleSmoothing::Auto)]
    pub smoothing: StyleSmoothing,
    /// Starting image.
    #[arg(long, value_enum, default_value_t = StyleInit::Noise)]
    pub init: StyleInit,
    /// Seed of the starting noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = StyleOptimizer::Adam)]
    pub optimizer: StyleOptimizer,
    /// Iterations of the first (coarsest) stage.
    #[arg(long, default_value_t = 300)]
    pub iters: usize,
    /// Iterations of each finer stage (default: a quarter of --iters).
    #[arg(long, value_name = "N")]
    pub refine_iters: Option<usize>,
    /// Adam's step size, pixels on a 0..1 scale, in the first stage (finer stages take 0.3 times
    /// it).
    #[arg(long, default_value_t = 0.03)]
    pub lr: f64,
    /// Long side of the output, pixels.
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    /// Long side of the coarsest stage: stages double from here up to --size.
    #[arg(long, default_value_t = 512)]
    pub coarse_size: usize,
    /// Blend weights of the style images, comma-separated, one per style (default: equal).
    #[arg(long, value_name = "LIST")]
    pub style_weights: Option<String>,
    /// Style images are resized to this times the long side of the image being optimised.
    #[arg(long, default_value_t = 1.0)]
    pub style_scale: f64,
    /// Keep the content's colours (luminance transfer).
    #[arg(long)]
    pub preserve_color: bool,
    /// Memory budget for the activations of one pass, e.g. 4G or 800M; a stage that needs more
    /// is optimised in overlapping tiles.
    #[arg(long, default_value = "4G", value_name = "BYTES")]
    pub max_memory: String,
    /// Write the current image every N iterations, as OUT-stageS-iterN.png.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub snapshot_every: usize,
    /// Draw the loss curves of the run into this PNG.
    #[arg(long, value_name = "PNG")]
    pub loss_plot: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Largest input image accepted, in pixels (width x height), checked before decoding.
    #[arg(long, default_value_t = visage_image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Print the summary (losses per iteration, time per iteration, peak memory) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelsDir,
}

/// Arguments of `visage stylize`.
#[derive(Debug, Args)]
pub struct StylizeArgs {
    /// Images, or folders whose images are all stylised.
    #[arg(required = true, value_name = "IMAGE")]
    pub inputs: Vec<PathBuf>,
    /// A built-in style: an index 0 to 25, or a blend such as 3:0.5,12:0.5 (weights relative);
    /// repeat for several styles.
    #[arg(long, value_name = "K")]
    pub style: Vec<String>,
    /// Paint in the style of this picture (arbitrary-style network); repeat for several.
    #[arg(long, value_name = "FILE")]
    pub style_image: Vec<PathBuf>,
    /// Output: a .png file (one image, one style), else a folder (IMAGE.png, or
    /// IMAGE_STYLE.png with several styles).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// 0 to 1: how much of the stylised image is laid over the photo (arbitrary style: how far
    /// the style vector moves from the photo's own toward the style image's).
    #[arg(long, default_value_t = 1.0)]
    pub strength: f32,
    /// Keep the photo's colours; take only brightness from the stylised image.
    #[arg(long)]
    pub preserve_color: bool,
    /// Photos whose longer side exceeds this many pixels are scaled down first (0: never).
    #[arg(long, default_value_t = 1024)]
    pub max_size: u32,
    /// Largest image accepted, in pixels (width x height), checked before decoding.
    #[arg(long, default_value_t = visage_image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Also write a contact sheet: one row per image (the photo, then each style).
    #[arg(long, value_name = "FILE")]
    pub sheet: Option<PathBuf>,
    /// Longer side of each picture in the contact sheet, pixels.
    #[arg(long, default_value_t = 256)]
    pub sheet_cell: u32,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run each image this many times and report the fastest (for benchmarks).
    #[arg(long, default_value_t = 1)]
    pub reps: usize,
    /// One JSON line per output (input, output, style, size, milliseconds).
    #[arg(long)]
    pub json: bool,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelsDir,
}

/// Arguments of serve.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Gallery: an SQLite file or a postgres:// URL (several instances may share one PostgreSQL
    /// gallery); defaults to $VISAGE_DB, else gallery.sqlite in the user's data directory.
    #[arg(long, value_name = "PATH_OR_URL", env = "VISAGE_DB")]
    pub db: Option<String>,
    /// Inference threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Inference requests that may wait for a thread; more get 429 (default: 2 per thread).
    #[arg(long)]
    pub queue: Option<usize>,
    /// Largest request body, in MiB (larger: 413).
    #[arg(long, default_value_t = 10)]
    pub max_body_mb: usize,
    /// Longest a request may take, in seconds, reading its body included (longer: 503).
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
    /// Keep enrolment photos in this folder (named by SHA-256); by default no image is kept.
    #[arg(long, value_name = "DIR")]
    pub keep_images: Option<PathBuf>,
    /// Search structure of the in-memory index.
    #[arg(long, value_enum, default_value_t = IndexChoice::Auto)]
    pub index: IndexChoice,
    #[command(flatten)]
    pub models: ModelsDir,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeChoice {
    /// Identify faces and verify pairs.
    Identify,
    /// Enroll, list, show, rename and remove people.
    Manage,
}

/// Arguments of keys.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
    /// Gallery holding the keys: an SQLite file or a postgres:// URL (as visage serve --db).
    #[arg(long, value_name = "PATH_OR_URL", env = "VISAGE_DB", global = true)]
    pub db: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub models: ModelsDir,
}

/// The keys subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Make a key and print its secret (once; only its SHA-256 is stored).
    Create {
        /// Who or what holds the key (e.g. "front door").
        #[arg(long)]
        name: String,
        /// What it may do (repeat for both; default identify).
        #[arg(long, value_enum)]
        scope: Vec<ScopeChoice>,
    },
    /// Every key with its scopes; revoked keys are marked.
    List,
    /// Revoke a key: requests with it get 401 from then on.
    Revoke {
        /// The key's id (from visage keys list).
        id: i64,
    },
}
