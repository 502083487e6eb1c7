//! The analyses over what was recorded: rolling windows (over a clock and sequence-locked rings), key
//! patterns, the hit rate, alerts, and the view every renderer reads.

pub mod alerts;
pub mod clock;
pub(crate) mod history;
pub(crate) mod hit_rate;
pub mod patterns;
pub(crate) mod seqlock;
pub mod view;
pub mod windows;
