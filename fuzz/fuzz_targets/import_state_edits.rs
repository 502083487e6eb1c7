//! `import_state_edits`: a valid export (`cache_monitor_fuzz::sample_export`) with fuzzer-chosen edits
//! applied to its JSON tree (replace a value, remove, duplicate or swap an element, truncate an array),
//! imported by a fresh or a recording monitor. Reaches the checks behind the parser that random bytes
//! never pass. See `cache_monitor_fuzz::import_and_check` for what is checked.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Edits applied from one input; later ones are ignored.
const MAX_EDITS: usize = 8;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Bit 0: the importer has recorded (it must then be compatible); bit 1: it requires a bearer token.
    importer: u8,
    edits: Vec<Edit>,
}

/// One change at the node reached by following `path` (each byte picks a child, modulo their number).
#[derive(Arbitrary, Debug)]
struct Edit {
    path: Vec<u8>,
    change: Change,
}

#[derive(Arbitrary, Debug)]
enum Change {
    /// Replace the node.
    Set(Scalar),
    /// Remove it from its array or object.
    Remove,
    /// Insert a copy of it beside itself (in an array).
    Duplicate,
    /// Swap it with a later sibling (in an array).
    Swap(u8),
    /// Keep the first elements of the array it is.
    Truncate(u8),
}

#[derive(Arbitrary, Debug)]
enum Scalar {
    Null,
    Bool(bool),
    Small(u8),
    Count(u64),
    /// `u64::MAX` minus this.
    NearMax(u8),
    Negative(i64),
    Float(f64),
    Text(String),
    /// The bytes in hex, as pattern prefixes are written.
    Hex(Vec<u8>),
    EmptyArray,
    EmptyObject,
    /// An array of this many copies of a number.
    Repeated(u8, u64),
}

impl Scalar {
    fn value(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Small(n) => Value::from(*n),
            Self::Count(n) => Value::from(*n),
            Self::NearMax(n) => Value::from(u64::MAX - u64::from(*n)),
            Self::Negative(n) => Value::from(if *n < 0 { *n } else { -1 - *n }),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Text(s) => Value::from(s.as_str()),
            Self::Hex(bytes) => Value::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            Self::EmptyArray => Value::Array(Vec::new()),
            Self::EmptyObject => Value::Object(serde_json::Map::new()),
            Self::Repeated(n, v) => Value::Array(vec![Value::from(*v); usize::from(*n)]),
        }
    }
}

fn base() -> &'static Value {
    static BASE: OnceLock<Value> = OnceLock::new();
    BASE.get_or_init(|| serde_json::from_str(&cache_monitor_fuzz::sample_export()).expect("an export is JSON"))
}

/// Applies `edit` to `root`.
fn apply(root: &mut Value, edit: &Edit) {
    // Walk down to the parent of the target node, remembering which child the target is.
    let mut node = root;
    let mut steps = edit.path.iter().peekable();
    while let Some(&step) = steps.next() {
        let children = match &*node {
            Value::Array(items) => items.len(),
            Value::Object(map) => map.len(),
            _ => 0,
        };
        if children == 0 {
            break;
        }
        let index = usize::from(step) % children;
        let last = steps.peek().is_none() || is_leaf(child(node, index));
        if last {
            change(node, index, &edit.change);
            return;
        }
        node = child_mut(node, index);
    }
    if let Change::Set(scalar) = &edit.change {
        *node = scalar.value();
    }
}

fn is_leaf(value: &Value) -> bool {
    !matches!(value, Value::Array(items) if !items.is_empty())
        && !matches!(value, Value::Object(map) if !map.is_empty())
}

fn child(node: &Value, index: usize) -> &Value {
    match node {
        Value::Array(items) => &items[index],
        Value::Object(map) => map.values().nth(index).expect("index below the length"),
        _ => unreachable!("only containers have children"),
    }
}

fn child_mut(node: &mut Value, index: usize) -> &mut Value {
    match node {
        Value::Array(items) => &mut items[index],
        Value::Object(map) => map.values_mut().nth(index).expect("index below the length"),
        _ => unreachable!("only containers have children"),
    }
}

/// Applies `change` to the `index`-th child of the container `parent`.
fn change(parent: &mut Value, index: usize, change: &Change) {
    match (parent, change) {
        (parent, Change::Set(scalar)) => *child_mut(parent, index) = scalar.value(),
        (Value::Array(items), Change::Remove) => {
            items.remove(index);
        }
        (Value::Object(map), Change::Remove) => {
            let key = map.keys().nth(index).expect("index below the length").clone();
            map.remove(&key);
        }
        (Value::Array(items), Change::Duplicate) => items.insert(index, items[index].clone()),
        (Value::Array(items), Change::Swap(offset)) => {
            let other = (index + usize::from(*offset)) % items.len();
            items.swap(index, other);
        }
        (parent, Change::Truncate(keep)) => {
            if let Value::Array(items) = child_mut(parent, index) {
                items.truncate(usize::from(*keep));
            }
        }
        _ => {}
    }
}

fuzz_target!(|input: Input| {
    let mut snapshot = base().clone();
    for edit in input.edits.iter().take(MAX_EDITS) {
        apply(&mut snapshot, edit);
    }
    let importer = cache_monitor_fuzz::importer(input.importer & 1 != 0, input.importer & 2 != 0);
    let bytes = serde_json::to_vec(&snapshot).expect("a JSON value serialises");
    cache_monitor_fuzz::import_and_check(&importer, &bytes);
});
