use std::time::Instant;
use visage_classical::*;
fn main() {
    for (dir, tpp) in [("/work/shared/data/orl", 5), ("/work/shared/data/yale", 5)] {
        let t = Instant::now();
        let set = Dataset::load(std::path::Path::new(dir), &LoadOptions::default()).unwrap();
        println!("{dir}: {}x{} loaded in {:?}", set.width, set.height, t.elapsed());
        let split = set.split(tpp, 1).unwrap();
        let x = set.matrix(&split.train);
        let labels = set.labels(&split.train);
        let tx = set.matrix(&split.test);
        let tl = set.labels(&split.test);
        let input = Input::Gray { width: set.width, height: set.height };
        for (f, c) in [
            (FeatureSpec::Pca(None), ClassifierSpec::Nearest(Metric::Euclidean)),
            (FeatureSpec::Lda(None), ClassifierSpec::Nearest(Metric::Euclidean)),
            (FeatureSpec::Raw, ClassifierSpec::Nearest(Metric::Euclidean)),
            (FeatureSpec::Raw, ClassifierSpec::Svm { rbf: false, gamma: None, c: 1.0 }),
            (FeatureSpec::Raw, ClassifierSpec::Svm { rbf: true, gamma: None, c: 10.0 }),
        ] {
            let t = Instant::now();
            let (m, _) = ClassicalModel::train("x", input.clone(), set.people.clone(), &x, &labels, f, c).unwrap();
            println!("  {f:?} {c:?}: {:.4} in {:?}", m.accuracy(&tx, &tl).unwrap(), t.elapsed());
        }
    }
}
