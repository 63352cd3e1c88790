//! WeChat Official Accounts: the callback protocol's signatures and
//! secure-mode crypto (WXBizMsgCrypt), as published by Tencent and checked
//! against the SDKs' vectors in `../shared/vectors/wechat-crypto.txt`.

pub mod crypto;
