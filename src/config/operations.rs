//! The `"operations"` key and the operation vocabulary: the built-in [`Operation`]s and their codes, the
//! custom ones a host registers, and [`MAX_OPERATIONS`], by which the recording layer sizes its shards.
//!
//! ```json
//! {"operations": ["compact", "refresh"]}
//! ```
//!
//! Custom operations can only be appended: a registered name keeps its code for the life of the monitor,
//! so recorded counts never change label.

use std::fmt;

use super::{ConfigError, is_identifier};

/// How many operation codes a monitor can track: the seven built-in ones and up to nine custom ones
/// registered through the `operations` configuration key.
pub const MAX_OPERATIONS: usize = 16;

/// A cache operation, identified by a small code.
///
/// Codes `0..=6` are the built-in operations below; codes from [`Operation::FIRST_CUSTOM`] upwards name the
/// custom operations a host registers (`{"operations": ["compact"]}` makes `compact` code 7). A code is only
/// accepted by a monitor once it is registered there.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation(u32);

impl Operation {
    /// A lookup: its outcome is `Hit` or `Miss` (or `Error`).
    pub const GET: Self = Self(0);
    /// An insert or update.
    pub const PUT: Self = Self(1);
    /// Removal of one key.
    pub const DELETE: Self = Self(2);
    /// A presence check: `Hit` when the key is present.
    pub const CONTAINS: Self = Self(3);
    /// Removal of every key.
    pub const CLEAR: Self = Self(4);
    /// Removal decided by the cache (capacity, TTL).
    pub const EVICT: Self = Self(5);
    /// A fill from the backing store after a miss.
    pub const LOAD: Self = Self(6);
    /// The code given to the first custom operation.
    pub const FIRST_CUSTOM: u32 = 7;

    /// The built-in operations, in code order.
    pub const BUILTIN: [Self; 7] = [
        Self::GET,
        Self::PUT,
        Self::DELETE,
        Self::CONTAINS,
        Self::CLEAR,
        Self::EVICT,
        Self::LOAD,
    ];

    /// The operation with this code. Whether a monitor accepts it depends on what is registered there.
    pub const fn from_code(code: u32) -> Self {
        Self(code)
    }

    /// This operation's code.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// The label value of a built-in operation, `None` for custom codes.
    pub const fn builtin_name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("get"),
            1 => Some("put"),
            2 => Some("delete"),
            3 => Some("contains"),
            4 => Some("clear"),
            5 => Some("evict"),
            6 => Some("load"),
            _ => None,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.builtin_name() {
            Some(name) => write!(f, "Operation({name})"),
            None => write!(f, "Operation(#{})", self.0),
        }
    }
}

/// Accepts `wanted` as the custom operations, given the `current` ones: append only, lower-case
/// identifiers of at most 64 bytes, no duplicates, no built-in names, at most
/// `MAX_OPERATIONS - Operation::BUILTIN.len()`.
pub(crate) fn check(current: &[String], wanted: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let room = MAX_OPERATIONS - Operation::BUILTIN.len();
    let invalid = |why: String| Err(ConfigError::InvalidConfig(format!("operations: {why}")));
    if wanted.len() > room {
        return invalid(format!("at most {room} custom operations"));
    }
    if !wanted.starts_with(current) {
        return invalid(format!("registered operations {current:?} must stay first, in order"));
    }
    for (i, name) in wanted.iter().enumerate() {
        let lower = name.bytes().all(|b| !b.is_ascii_uppercase());
        if name.len() > 64 || !lower || !is_identifier(name) {
            return invalid(format!("{name:?} is not a lower-case identifier of at most 64 bytes"));
        }
        let builtin = Operation::BUILTIN
            .iter()
            .any(|op| op.builtin_name() == Some(name.as_str()));
        if builtin || wanted[..i].contains(name) {
            return invalid(format!("{name:?} is already an operation"));
        }
    }
    Ok(wanted)
}
