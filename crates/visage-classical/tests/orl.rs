//! End-to-end checks on the real ORL faces (40 people x 10 images of 92x112), read from
//! `VISAGE_SHARED` (default: `../shared` beside the workspace).

use std::path::PathBuf;

use visage_classical::{
    ClassicalModel, ClassifierSpec, Dataset, FeatureSpec, Input, LoadOptions, Metric,
};

fn orl() -> PathBuf {
    let shared = visage_testdata::shared();
    let dir = shared.join("data/orl");
    assert!(
        dir.is_dir(),
        "ORL not found at {} (set VISAGE_SHARED)",
        dir.display()
    );
    dir
}

fn accuracy(set: &Dataset, features: FeatureSpec, classifier: ClassifierSpec) -> f64 {
    let split = set.split(5, 1).unwrap();
    let input = Input::Gray {
        width: set.width,
        height: set.height,
    };
    let x = set.matrix(&split.train);
    let labels = set.labels(&split.train);
    let (model, _) = ClassicalModel::train(
        "test",
        input,
        set.people.clone(),
        &x,
        &labels,
        features,
        classifier,
    )
    .unwrap();
    model
        .accuracy(&set.matrix(&split.test), &set.labels(&split.test))
        .unwrap()
}

#[test]
fn orl_identification_on_seeded_five_five_split() {
    let set = Dataset::load(&orl(), &LoadOptions::default()).unwrap();
    assert_eq!((set.people.len(), set.samples.len()), (40, 400));
    assert_eq!((set.width, set.height, set.resized), (92, 112, 0));

    let eigen = accuracy(
        &set,
        FeatureSpec::Pca(None),
        ClassifierSpec::Nearest(Metric::Euclidean),
    );
    assert!(eigen >= 0.9, "eigenfaces accuracy {eigen}");
    let fisher = accuracy(
        &set,
        FeatureSpec::Lda(None),
        ClassifierSpec::Nearest(Metric::Euclidean),
    );
    assert!(fisher >= 0.85, "Fisherfaces accuracy {fisher}");
    let svm = accuracy(
        &set,
        FeatureSpec::Raw,
        ClassifierSpec::Svm {
            rbf: false,
            gamma: None,
            c: 1.0,
        },
    );
    assert!(svm >= 0.9, "linear SVM on pixels accuracy {svm}");
}
