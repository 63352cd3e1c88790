//! Fake third-party APIs on loopback, for Madoguchi's tests.
//!
//! Each fake is a real HTTP server on `127.0.0.1` port 0 that answers like the
//! real service (status codes, error bodies, headers), keeps the state the real
//! service would keep, and records every request for assertions.
//!
//! # Layout
//! - [`line`]: the LINE Messaging API ([`FakeLine`]): access tokens, single-use
//!   reply tokens with a time window, push retry keys, quota, profiles, message
//!   content with 202 "not ready" answers, and scripted failures.

pub mod line;

pub use line::{FakeBotInfo, FakeHost, FakeLine, FakeProfile, RecordedRequest};
