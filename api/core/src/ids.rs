//! Typed identifiers: a `ChatId` cannot be passed where a `ChannelId` is meant.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Returns a new, time-ordered identifier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses an identifier given by a caller.
            pub fn parse(text: &str) -> Result<Self> {
                Uuid::parse_str(text.trim())
                    .map(Self)
                    .map_err(|_| Error::invalid_argument(format!("malformed {} {text:?}", stringify!($name))))
            }

            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self> {
                Self::parse(text)
            }
        }
    )*};
}

id_type!(
    OrganizationId,
    DepartmentId,
    AgentId,
    BrandId,
    ApiKeyId,
    ChannelId,
    EndUserId,
    ContactId,
    ChatId,
    MessageId,
    AttachmentId,
    TicketId,
    JobId,
);
