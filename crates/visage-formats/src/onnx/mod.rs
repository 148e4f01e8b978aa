//! A minimal ONNX reader: the graph (nodes with their attributes, inputs, outputs) and the
//! weights (initializers), decoded straight from the protobuf wire format, so no protobuf
//! compiler or generated code is needed. Enough to run ONNX networks with native kernels;
//! external data files, sparse tensors, subgraphs and training information are not supported
//! (a model using them is refused or those parts are skipped).

mod model;
mod wire;

pub use model::{Attribute, Graph, Model, Node, Tensor, TensorData};
