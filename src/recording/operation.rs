//! What is recorded: the cache [`Operation`] and its [`Outcome`].

use std::fmt;

/// How many operation codes a monitor can track: the seven built-in ones and up to nine custom ones
/// registered through the `operations` configuration key.
pub const MAX_OPERATIONS: usize = 16;

/// How many outcomes exist ([`Outcome::ALL`]).
pub const OUTCOMES: usize = 4;

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

/// The result of one operation: the `result` label of every metric.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[repr(u32)]
pub enum Outcome {
    /// The key was found.
    Hit = 0,
    /// The key was not found.
    Miss = 1,
    /// The operation succeeded and has no hit or miss (put, delete, clear...).
    Ok = 2,
    /// The operation failed.
    Error = 3,
}

impl Outcome {
    /// Every outcome, in code order.
    pub const ALL: [Self; OUTCOMES] = [Self::Hit, Self::Miss, Self::Ok, Self::Error];

    /// The outcome with this code, if there is one.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Hit),
            1 => Some(Self::Miss),
            2 => Some(Self::Ok),
            3 => Some(Self::Error),
            _ => None,
        }
    }

    /// This outcome's code.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The `result` label value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// A gauge the host sets: the cache's own view of itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u32)]
pub enum Gauge {
    /// Bytes held by the cache.
    SizeBytes = 0,
    /// Entries held by the cache.
    Entries = 1,
}

impl Gauge {
    /// Every gauge, in code order.
    pub const ALL: [Self; 2] = [Self::SizeBytes, Self::Entries];

    /// The gauge with this code, if there is one.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::SizeBytes),
            1 => Some(Self::Entries),
            _ => None,
        }
    }

    /// The `metric` label value of `<ns>_stats`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SizeBytes => "size_bytes",
            Self::Entries => "entries",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (code, op) in Operation::BUILTIN.iter().enumerate() {
            assert_eq!(op.code() as usize, code);
            assert_eq!(Operation::from_code(code as u32), *op);
            assert!(op.builtin_name().is_some());
        }
        assert_eq!(Operation::from_code(Operation::FIRST_CUSTOM).builtin_name(), None);
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::from_code(outcome.code()), Some(outcome));
        }
        assert_eq!(Outcome::from_code(4), None);
        for gauge in Gauge::ALL {
            assert_eq!(Gauge::from_code(gauge as u32), Some(gauge));
        }
        assert_eq!(Gauge::from_code(2), None);
    }
}
