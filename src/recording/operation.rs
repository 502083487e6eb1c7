//! What is recorded: the cache [`Operation`] (its codes are configuration vocabulary, defined in
//! `config::operations`), its [`Outcome`], and the host's [`Gauge`]s.

pub use crate::config::operations::{MAX_OPERATIONS, Operation};

/// How many outcomes exist ([`Outcome::ALL`]).
pub const OUTCOMES: usize = 4;

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
