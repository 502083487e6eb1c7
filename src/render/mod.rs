//! Renderers: pure functions from a [`MetricsView`](crate::analysis::view::MetricsView) to text, or to
//! protobuf messages ([`protobuf`]). Nothing here touches the hot path.

pub(crate) mod escape;
pub(crate) mod families;
pub mod json;
pub mod protobuf;
pub mod text;
