//! ONNX messages (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto) as plain Rust
//! values. Field numbers follow onnx.proto (IR version 3 and later).

use std::collections::HashMap;
use std::path::Path;

use super::wire::{self, Reader, Value, WireError};
use crate::FormatError;

const FORMAT: &str = "ONNX model";

/// The values of a tensor, in the element type the file stores.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// FLOAT (1).
    F32(Vec<f32>),
    /// UINT8 (2).
    U8(Vec<u8>),
    /// INT8 (3).
    I8(Vec<i8>),
    /// INT32 (6).
    I32(Vec<i32>),
    /// INT64 (7).
    I64(Vec<i64>),
}

impl TensorData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value converted to `f32` (integers exactly up to 2^24).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            TensorData::F32(v) => v.clone(),
            TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Every value converted to `i64` (floats truncated toward zero).
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            TensorData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I64(v) => v.clone(),
        }
    }
}

/// A named tensor: a weight (initializer) or a constant attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Its name in the graph (empty for attribute values).
    pub name: String,
    /// Dimensions, outermost first (empty for a scalar).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: TensorData,
}

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    /// One float.
    Float(f32),
    /// One integer.
    Int(i64),
    /// Bytes (usually an ASCII string such as a mode name).
    String(Vec<u8>),
    /// A tensor.
    Tensor(Tensor),
    /// Several floats.
    Floats(Vec<f32>),
    /// Several integers.
    Ints(Vec<i64>),
    /// Several byte strings.
    Strings(Vec<Vec<u8>>),
}

/// One operation of the graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// The operator, such as "Conv".
    pub op_type: String,
    /// The operator set's domain ("" for the standard one).
    pub domain: String,
    /// The node's name (may be empty).
    pub name: String,
    /// Names of the values it reads; an empty name is an omitted optional input.
    pub inputs: Vec<String>,
    /// Names of the values it writes.
    pub outputs: Vec<String>,
    /// Its attributes by name.
    pub attributes: HashMap<String, Attribute>,
}

impl Node {
    /// An integer attribute, or `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        match self.attributes.get(name) {
            Some(Attribute::Int(v)) => *v,
            _ => default,
        }
    }

    /// A float attribute, or `default` when absent.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        match self.attributes.get(name) {
            Some(Attribute::Float(v)) => *v,
            _ => default,
        }
    }

    /// An integer-list attribute, if present.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attributes.get(name) {
            Some(Attribute::Ints(v)) => Some(v),
            _ => None,
        }
    }

    /// A string attribute (lossy UTF-8), if present.
    pub fn string(&self, name: &str) -> Option<String> {
        match self.attributes.get(name) {
            Some(Attribute::String(v)) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        }
    }

    /// A tensor attribute, if present.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        match self.attributes.get(name) {
            Some(Attribute::Tensor(t)) => Some(t),
            _ => None,
        }
    }
}

/// A computation graph: nodes in topological order (as ONNX requires) and the weights.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// The graph's name.
    pub name: String,
    /// Its operations, each after the ones it reads from.
    pub nodes: Vec<Node>,
    /// Its weights, by name.
    pub initializers: HashMap<String, Tensor>,
    /// Names of the graph's inputs (weights excluded).
    pub inputs: Vec<String>,
    /// Names of the graph's outputs.
    pub outputs: Vec<String>,
}

/// An ONNX model file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    /// The ONNX IR version the file declares.
    pub ir_version: i64,
    /// The tool that wrote it, such as "pytorch".
    pub producer: String,
    /// Operator-set versions by domain ("" is the standard operator set).
    pub opsets: HashMap<String, i64>,
    /// The graph.
    pub graph: Graph,
}

impl Model {
    /// Reads an ONNX file.
    pub fn read(path: &Path) -> Result<Model, FormatError> {
        let bytes = std::fs::read(path).map_err(|source| FormatError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Model::parse(&bytes).map_err(|e| FormatError::Invalid {
            path: path.to_path_buf(),
            format: FORMAT,
            offset: e.offset,
            message: e.message,
        })
    }

    /// Decodes an ONNX model from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<Model, WireError> {
        let mut model = Model::default();
        let mut graph = None;
        let mut r = Reader::new(bytes, 0);
        while let Some((number, value)) = r.field()? {
            match number {
                1 => model.ir_version = wire::int64(value, "ir_version", 0)?,
                2 => model.producer = wire::string(value, "producer_name", 0)?,
                7 => {
                    let (b, at) = wire::bytes(value, "graph", 0)?;
                    graph = Some(parse_graph(b, at)?);
                }
                8 => {
                    let (b, at) = wire::bytes(value, "opset_import", 0)?;
                    let (domain, version) = parse_opset(b, at)?;
                    model.opsets.insert(domain, version);
                }
                _ => {}
            }
        }
        model.graph = graph.ok_or_else(|| WireError {
            offset: bytes.len(),
            message: "no graph: not an ONNX model".into(),
        })?;
        Ok(model)
    }
}

fn parse_opset(buf: &[u8], base: usize) -> Result<(String, i64), WireError> {
    let mut r = Reader::new(buf, base);
    let (mut domain, mut version) = (String::new(), 0);
    while let Some((number, value)) = r.field()? {
        match number {
            1 => domain = wire::string(value, "opset domain", base)?,
            2 => version = wire::int64(value, "opset version", base)?,
            _ => {}
        }
    }
    Ok((domain, version))
}

fn parse_graph(buf: &[u8], base: usize) -> Result<Graph, WireError> {
    let mut graph = Graph::default();
    let mut inputs = Vec::new();
    let mut r = Reader::new(buf, base);
    while let Some((number, value)) = r.field()? {
        match number {
            1 => {
                let (b, at) = wire::bytes(value, "node", base)?;
                graph.nodes.push(parse_node(b, at)?);
            }
            2 => graph.name = wire::string(value, "graph name", base)?,
            5 => {
                let (b, at) = wire::bytes(value, "initializer", base)?;
                let t = parse_tensor(b, at)?;
                graph.initializers.insert(t.name.clone(), t);
            }
            11 | 12 => {
                let (b, at) = wire::bytes(value, "value info", base)?;
                let name = parse_value_info_name(b, at)?;
                if number == 11 {
                    inputs.push(name);
                } else {
                    graph.outputs.push(name);
                }
            }
            _ => {}
        }
    }
    // Older exporters list weights among the inputs too.
    graph.inputs = inputs
        .into_iter()
        .filter(|n| !graph.initializers.contains_key(n))
        .collect();
    Ok(graph)
}

fn parse_value_info_name(buf: &[u8], base: usize) -> Result<String, WireError> {
    let mut r = Reader::new(buf, base);
    while let Some((number, value)) = r.field()? {
        if number == 1 {
            return wire::string(value, "value name", base);
        }
    }
    Ok(String::new())
}

fn parse_node(buf: &[u8], base: usize) -> Result<Node, WireError> {
    let mut node = Node::default();
    let mut r = Reader::new(buf, base);
    while let Some((number, value)) = r.field()? {
        match number {
            1 => node.inputs.push(wire::string(value, "node input", base)?),
            2 => node.outputs.push(wire::string(value, "node output", base)?),
            3 => node.name = wire::string(value, "node name", base)?,
            4 => node.op_type = wire::string(value, "op_type", base)?,
            5 => {
                let (b, at) = wire::bytes(value, "attribute", base)?;
                let (name, attribute) = parse_attribute(b, at)?;
                if let Some(attribute) = attribute {
                    node.attributes.insert(name, attribute);
                }
            }
            7 => node.domain = wire::string(value, "node domain", base)?,
            _ => {}
        }
    }
    Ok(node)
}

/// An attribute's name and value; `None` for kinds not supported here (graphs, sparse tensors).
fn parse_attribute(buf: &[u8], base: usize) -> Result<(String, Option<Attribute>), WireError> {
    let mut name = String::new();
    let mut kind = 0i64;
    let (mut f, mut i, mut s, mut t) = (None, None, None, None);
    let (mut floats, mut ints, mut strings) = (Vec::new(), Vec::new(), Vec::new());
    let mut r = Reader::new(buf, base);
    while let Some((number, value)) = r.field()? {
        match number {
            1 => name = wire::string(value, "attribute name", base)?,
            2 => match value {
                Value::Fixed32(v) => f = Some(f32::from_bits(v)),
                _ => return Err(r.error("attribute f: expected a float")),
            },
            3 => i = Some(wire::int64(value, "attribute i", base)?),
            4 => s = Some(wire::bytes(value, "attribute s", base)?.0.to_vec()),
            5 => {
                let (b, at) = wire::bytes(value, "attribute t", base)?;
                t = Some(parse_tensor(b, at)?);
            }
            7 => wire::push_floats(value, &mut floats, "attribute floats")?,
            8 => wire::push_int64s(value, &mut ints, "attribute ints")?,
            9 => strings.push(wire::bytes(value, "attribute strings", base)?.0.to_vec()),
            20 => kind = wire::int64(value, "attribute type", base)?,
            _ => {}
        }
    }
    // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7,
    // STRINGS 8. Files without the type field (very old ones) are read by which value is set.
    let attribute = match kind {
        1 => f.map(Attribute::Float),
        2 => i.map(Attribute::Int),
        3 => s.map(Attribute::String),
        4 => t.map(Attribute::Tensor),
        6 => Some(Attribute::Floats(floats)),
        7 => Some(Attribute::Ints(ints)),
        8 => Some(Attribute::Strings(strings)),
        0 => f
            .map(Attribute::Float)
            .or(i.map(Attribute::Int))
            .or(s.map(Attribute::String))
            .or(t.map(Attribute::Tensor)),
        _ => None,
    };
    Ok((name, attribute))
}

fn parse_tensor(buf: &[u8], base: usize) -> Result<Tensor, WireError> {
    let mut dims = Vec::new();
    let mut data_type = 0i64;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let (mut floats, mut int32s, mut int64s) = (Vec::new(), Vec::new(), Vec::new());
    let mut r = Reader::new(buf, base);
    while let Some((number, value)) = r.field()? {
        match number {
            1 => wire::push_int64s(value, &mut dims, "tensor dims")?,
            2 => data_type = wire::int64(value, "tensor data_type", base)?,
            4 => wire::push_floats(value, &mut floats, "tensor float_data")?,
            5 => wire::push_int64s(value, &mut int32s, "tensor int32_data")?,
            7 => wire::push_int64s(value, &mut int64s, "tensor int64_data")?,
            8 => name = wire::string(value, "tensor name", base)?,
            9 => raw = Some(wire::bytes(value, "tensor raw_data", base)?.0),
            14 => {
                if let Value::Varint(1) = value {
                    return Err(r.error(format!("tensor {name:?} keeps its data in an external file, which is not supported")));
                }
            }
            _ => {}
        }
    }
    let fail = |message: String| WireError {
        offset: base,
        message,
    };
    let dims: Vec<usize> = dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| fail(format!("tensor {name:?}: negative dimension {d}")))
        })
        .collect::<Result<_, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| fail(format!("tensor {name:?}: size overflows")))?;
    let data = match (data_type, raw) {
        (1, Some(b)) => TensorData::F32(
            from_le(b, 4, count, &name, base)?
                .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                .collect(),
        ),
        (1, None) => TensorData::F32(floats),
        (2, Some(b)) => TensorData::U8(from_le(b, 1, count, &name, base)?.map(|c| c[0]).collect()),
        (3, Some(b)) => TensorData::I8(
            from_le(b, 1, count, &name, base)?
                .map(|c| c[0] as i8)
                .collect(),
        ),
        // Small integer types without raw data are stored one per int32_data entry.
        (2, None) => TensorData::U8(int32s.iter().map(|&v| v as u8).collect()),
        (3, None) => TensorData::I8(int32s.iter().map(|&v| v as i8).collect()),
        (6, Some(b)) => TensorData::I32(
            from_le(b, 4, count, &name, base)?
                .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
                .collect(),
        ),
        (6, None) => TensorData::I32(int32s.iter().map(|&v| v as i32).collect()),
        (7, Some(b)) => TensorData::I64(
            from_le(b, 8, count, &name, base)?
                .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                .collect(),
        ),
        (7, None) => TensorData::I64(int64s),
        (t, _) => {
            return Err(fail(format!(
                "tensor {name:?}: element type {t} is not supported"
            )))
        }
    };
    if data.len() != count {
        return Err(fail(format!(
            "tensor {name:?}: {} values for dimensions {dims:?}",
            data.len()
        )));
    }
    Ok(Tensor { name, dims, data })
}

fn from_le<'a>(
    bytes: &'a [u8],
    width: usize,
    count: usize,
    name: &str,
    base: usize,
) -> Result<std::slice::ChunksExact<'a, u8>, WireError> {
    if Some(bytes.len()) != count.checked_mul(width) {
        return Err(WireError {
            offset: base,
            message: format!(
                "tensor {name:?}: {} bytes of data for {count} values of {width} bytes",
                bytes.len()
            ),
        });
    }
    Ok(bytes.chunks_exact(width))
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_testdata::shared;

    fn field_bytes(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    /// A hand-assembled model: one Relu node and one 2x1 float initializer.
    fn tiny_model() -> Vec<u8> {
        let mut tensor = vec![0x08, 2, 0x08, 1, 0x10, 1];
        tensor.extend(field_bytes(8, b"w"));
        let mut raw = Vec::new();
        raw.extend(1.5f32.to_le_bytes());
        raw.extend((-2.0f32).to_le_bytes());
        tensor.extend(field_bytes(9, &raw));
        let mut attr = field_bytes(1, b"alpha");
        attr.push(0x15);
        attr.extend(0.25f32.to_le_bytes());
        attr.extend([0xa0, 0x01, 1]); // type = FLOAT (field 20)
        let mut node = field_bytes(1, b"x");
        node.extend(field_bytes(2, b"y"));
        node.extend(field_bytes(4, b"Relu"));
        node.extend(field_bytes(5, &attr));
        let mut graph = field_bytes(1, &node);
        graph.extend(field_bytes(5, &tensor));
        graph.extend(field_bytes(11, &field_bytes(1, b"x")));
        graph.extend(field_bytes(11, &field_bytes(1, b"w")));
        graph.extend(field_bytes(12, &field_bytes(1, b"y")));
        let mut model = vec![0x08, 8];
        model.extend(field_bytes(7, &graph));
        model
    }

    #[test]
    fn decodes_a_hand_made_model() {
        let model = Model::parse(&tiny_model()).unwrap();
        assert_eq!(model.ir_version, 8);
        let g = &model.graph;
        assert_eq!(g.inputs, ["x"]);
        assert_eq!(g.outputs, ["y"]);
        assert_eq!(g.nodes[0].op_type, "Relu");
        assert_eq!(g.nodes[0].float("alpha", 0.0), 0.25);
        let w = &g.initializers["w"];
        assert_eq!(w.dims, [2, 1]);
        assert_eq!(w.data, TensorData::F32(vec![1.5, -2.0]));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = tiny_model();
        for len in 0..bytes.len() {
            // Some prefixes end exactly between fields and are valid but graph-less or shorter.
            let _ = Model::parse(&bytes[..len]);
        }
        assert!(Model::parse(&[]).is_err());
        assert!(Model::parse(b"not an onnx file at all").is_err());
    }

    #[test]
    fn reads_the_multistyle_network() {
        let path = shared().join("models/fast_style/multistyle26.onnx");
        let model = Model::read(&path).unwrap();
        assert_eq!(model.producer, "pytorch");
        assert_eq!(model.opsets[""], 17);
        let g = &model.graph;
        assert_eq!(g.inputs, ["image", "style_weights"]);
        assert_eq!(g.outputs, ["stylized"]);
        assert_eq!(g.nodes.len(), 709);
        assert_eq!(g.initializers.len(), 54);
        assert_eq!(g.initializers["contract.0.w"].dims, [32, 3, 9, 9]);
        assert_eq!(g.initializers["expand.2.norm.gamma"].dims, [26, 3]);
        let convs: Vec<_> = g.nodes.iter().filter(|n| n.op_type == "Conv").collect();
        assert_eq!(convs.len(), 18);
        assert_eq!(convs[1].ints("strides"), Some(&[2i64, 2][..]));
        let pad = g.nodes.iter().find(|n| n.op_type == "Pad").unwrap();
        assert_eq!(pad.string("mode").as_deref(), Some("reflect"));
    }

    #[test]
    fn reads_the_quantized_arbitrary_style_networks() {
        for (file, nodes, inits) in [
            ("arbitrary_predict.onnx", 338, 295),
            ("arbitrary_transform.onnx", 740, 415),
        ] {
            let model = Model::read(&shared().join("models/fast_style").join(file)).unwrap();
            assert_eq!(model.producer, "tf2onnx");
            assert_eq!(model.graph.nodes.len(), nodes, "{file}");
            assert_eq!(model.graph.initializers.len(), inits, "{file}");
            assert!(model
                .graph
                .initializers
                .values()
                .any(|t| matches!(t.data, TensorData::I8(_))));
        }
    }
}
