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
//! - [`wechat`]: the WeChat Official Account API ([`FakeWechat`]): classic and
//!   stable access tokens with lifetimes, replacement and revocation,
//!   customer-service messages with the 48-hour window and message limits,
//!   temporary media upload (multipart) and download (bytes, or a video link),
//!   and scripted send failures, including answers lost after taking effect.

pub mod line;
pub mod wechat;

pub use line::{FakeBotInfo, FakeHost, FakeLine, FakeProfile, RecordedRequest};
pub use wechat::{FakeWechat, WechatRequest};
