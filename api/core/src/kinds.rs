//! The enumerated values stored as upper-case strings: statuses, kinds,
//! modes. Each parses what a caller or the database gives and prints what
//! is stored.

use crate::error::{Error, Result};

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Result<Self> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::invalid_argument(format!(concat!("unknown ", stringify!($name), " {:?}"), other))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Which messaging service a channel is on.
    ChannelKind {
        Line => "LINE",
        Wechat => "WECHAT",
        /// Where chats partner systems submit from channels we do not host
        /// land (one per organization); nothing is sent through it.
        Partner => "PARTNER",
    }
);
string_enum!(
    /// Whether a channel carries messages.
    ChannelStatus {
        /// Messages flow both ways.
        Active => "ACTIVE",
        /// Nothing in or out; data kept; can be enabled again.
        Disabled => "DISABLED",
        /// Chats stay readable; nothing can be sent, forwarded or blocked.
        Deleted => "DELETED",
    }
);
string_enum!(
    /// How agents' answers leave on a LINE channel.
    LineMode {
        /// Only on a customer's reply token: free, within its window.
        Reply => "REPLY",
        /// Push at any time, counted against the monthly quota.
        Push => "PUSH",
        /// Reply when a fresh token exists, push otherwise.
        Auto => "AUTO",
    }
);
string_enum!(
    /// A LINE Official Account plan and its monthly push allowance.
    LinePlan { Free => "FREE", Light => "LIGHT", Standard => "STANDARD" }
);

impl LinePlan {
    /// Returns how many pushed messages the plan allows per calendar month.
    pub fn monthly_pushes(self) -> i64 {
        match self {
            Self::Free => 200,
            Self::Light => 5_000,
            Self::Standard => 30_000,
        }
    }
}

string_enum!(
    /// How long a chat no agent answered stays open (the seed's choices).
    MissedCloseWindow {
        FifteenMinutes => "FIFTEEN_MINUTES",
        OneHour => "ONE_HOUR",
        OneDay => "ONE_DAY",
        OneWeek => "ONE_WEEK",
        /// 30 days.
        OneMonth => "ONE_MONTH",
    }
);

impl MissedCloseWindow {
    pub fn seconds(self) -> i64 {
        match self {
            Self::FifteenMinutes => 15 * 60,
            Self::OneHour => 60 * 60,
            Self::OneDay => 24 * 60 * 60,
            Self::OneWeek => 7 * 24 * 60 * 60,
            Self::OneMonth => 30 * 24 * 60 * 60,
        }
    }

    /// The window of this many seconds, if it is one of the choices.
    pub fn from_seconds(seconds: i64) -> Option<Self> {
        Self::ALL.iter().copied().find(|window| window.seconds() == seconds)
    }
}

string_enum!(
    /// Why a chat was completed.
    CompletionReason {
        /// Its agent (or an admin) completed it.
        Agent => "AGENT",
        /// No agent answered within the channel's missed-chat window.
        Missed => "MISSED",
        /// Nobody wrote for the channel's idle close time.
        Idle => "IDLE",
        /// A partner system submitted it, finished.
        Submitted => "SUBMITTED",
    }
);
string_enum!(
    /// Where a chat stands.
    ChatStatus {
        /// Unread: no agent has claimed it.
        New => "NEW",
        /// Claimed by one agent.
        InProgress => "IN_PROGRESS",
        Completed => "COMPLETED",
    }
);
string_enum!(MessageDirection { Inbound => "INBOUND", Outbound => "OUTBOUND" });
string_enum!(
    /// What a message carries.
    MessageKind {
        Text => "TEXT",
        Image => "IMAGE",
        Video => "VIDEO",
        Audio => "AUDIO",
        File => "FILE",
        Sticker => "STICKER",
        Location => "LOCATION",
        /// A link the consumer shared (WeChat): its title, description and URL.
        Link => "LINK",
        /// A type the provider added after this code was written; kept raw.
        Unknown => "UNKNOWN",
    }
);
string_enum!(
    /// Where a message is on its way.
    DeliveryState {
        /// An inbound message, stored.
        Received => "RECEIVED",
        /// An outbound message about to be sent.
        Pending => "PENDING",
        /// Waiting for the customer's next reply token (LINE reply mode).
        Unsent => "UNSENT",
        /// Handed to the provider; its answer has not come back yet.
        Sending => "SENDING",
        Sent => "SENT",
        /// The provider's answer was lost (a timeout, a server error): the
        /// message may or may not have reached the customer. It is not sent
        /// again by itself; the agent may send it again.
        Unconfirmed => "UNCONFIRMED",
        Failed => "FAILED",
    }
);
string_enum!(
    /// How an outbound message left: on a reply token (LINE), or pushed at
    /// any time (a LINE push, a WeChat customer-service message).
    DeliveryMethod { Reply => "REPLY", Push => "PUSH" }
);
string_enum!(
    /// Whether a chat's consumer can be written to now (WeChat's rules).
    SendWindowState {
        /// Within the free window: send without limit.
        Open => "OPEN",
        /// Outside it: each message takes one of the monthly allowance.
        Limited => "LIMITED",
        /// Nothing can be sent until the consumer writes (or the month turns).
        Closed => "CLOSED",
    }
);
string_enum!(
    /// The state of a message's media.
    AttachmentStatus { Pending => "PENDING", Ready => "READY", Failed => "FAILED" }
);
string_enum!(
    /// Which chats become tickets by themselves (the link's rule).
    ChatToTicketRule {
        AllVisitors => "ALL_VISITORS",
        /// Chats an agent answered.
        Attended => "ATTENDED",
        /// Chats no agent answered.
        Missed => "MISSED",
        /// None: agents convert by hand.
        None => "NONE",
    }
);
string_enum!(
    /// A ticket's status.
    TicketStatus { Open => "OPEN", OnHold => "ON_HOLD", Escalated => "ESCALATED", Closed => "CLOSED" }
);
string_enum!(
    /// A ticket's priority.
    TicketPriority { High => "HIGH", Medium => "MEDIUM", Low => "LOW" }
);
string_enum!(
    /// How a chat-side department maps onto the helpdesk.
    MappingMode {
        /// Onto one helpdesk department.
        Department => "DEPARTMENT",
        /// No tickets, no view.
        None => "NONE",
        /// Tickets seen, none created or commented.
        ViewOnly => "VIEW_ONLY",
        /// The agent picks department, priority, status and classification.
        ChooseAsNeeded => "CHOOSE_AS_NEEDED",
    }
);
string_enum!(
    /// Which of the visitor's recent tickets agents see beside a chat.
    RecentTicketsScope { AllDepartments => "ALL_DEPARTMENTS", MappedOnly => "MAPPED_ONLY" }
);
