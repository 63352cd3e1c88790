//! Protocol code for the messaging channels Madoguchi answers on.
//!
//! This crate speaks the wire protocols and nothing else: it knows no database,
//! no HTTP server and nothing of the platform's core, so everything in it can be
//! tested (and fuzzed) on bytes alone.
//!
//! # Layout
//! - [`line`]: the LINE Messaging API
//!   - [`line::signature`]: `X-Line-Signature` checking and signing
//!   - [`line::webhook`]: typed webhook bodies, lenient to what LINE adds later
//!   - [`line::outbound`]: message objects we send
//!   - [`line::batching`]: the reply-mode rule that packs waiting agent messages
//!     into reply calls
//!   - [`line::client`]: an HTTP client for the endpoints we call
//! - [`wechat`]: WeChat Official Accounts
//!   - [`wechat::crypto`]: callback signatures and secure-mode (AES) crypto
//!   - [`wechat::xml`]: callback XML, bounded, into typed messages

pub mod line;
pub mod wechat;
