//! Small dense helpers on top of nalgebra shared by PCA, LDA and the SVM.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Eigenvalues in descending order and the matching unit eigenvectors (columns) of a
/// symmetric matrix.
pub fn sym_eigen_desc(m: DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let eig = SymmetricEigen::new(m);
    let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let values = order.iter().map(|&i| eig.eigenvalues[i]).collect();
    let vectors = eig.eigenvectors.select_columns(order.iter());
    (values, vectors)
}

/// Column means of a `dim x n` data matrix (the mean sample).
pub fn mean_column(x: &DMatrix<f64>) -> DVector<f64> {
    let n = x.ncols().max(1) as f64;
    x.column_sum() / n
}

/// `x` with `mean` subtracted from every column.
pub fn centred(x: &DMatrix<f64>, mean: &DVector<f64>) -> DMatrix<f64> {
    let mut a = x.clone();
    for mut col in a.column_iter_mut() {
        col -= mean;
    }
    a
}

/// Squared Euclidean norms of the columns.
pub fn column_sq_norms(x: &DMatrix<f64>) -> Vec<f64> {
    x.column_iter().map(|c| c.norm_squared()).collect()
}
