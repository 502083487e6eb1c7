//! The analyses over what was recorded: rolling windows (histories over the window rings), the hit rate,
//! alerts, and the view every renderer reads.

pub mod alerts;
pub(crate) mod history;
pub(crate) mod hit_rate;
pub mod view;
pub mod windows;
