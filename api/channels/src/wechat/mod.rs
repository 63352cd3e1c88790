//! WeChat Official Accounts: the callback protocol's signatures and
//! secure-mode crypto (WXBizMsgCrypt) and its XML, checked against the
//! SDKs' vectors (copied into `api/channels/vectors/` from `shared/vectors/`).

pub mod crypto;
pub mod xml;
