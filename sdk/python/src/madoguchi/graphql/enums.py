from enum import Enum


class AgentRole(str, Enum):
    ADMIN = "ADMIN"
    AGENT = "AGENT"


class AttachmentStatus(str, Enum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


class ButtonLanguage(str, Enum):
    JAPANESE = "JAPANESE"
    ENGLISH = "ENGLISH"
    TRADITIONAL_CHINESE = "TRADITIONAL_CHINESE"
    THAI = "THAI"
    KOREAN = "KOREAN"


class ChannelKind(str, Enum):
    LINE = "LINE"
    WECHAT = "WECHAT"
    PARTNER = "PARTNER"


class ChannelStatus(str, Enum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"
    DELETED = "DELETED"


class ChatStatus(str, Enum):
    NEW = "NEW"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class ChatToTicketRule(str, Enum):
    ALL_VISITORS = "ALL_VISITORS"
    ATTENDED = "ATTENDED"
    MISSED = "MISSED"
    NONE = "NONE"


class CompletionReason(str, Enum):
    AGENT = "AGENT"
    MISSED = "MISSED"
    IDLE = "IDLE"
    SUBMITTED = "SUBMITTED"


class DeliveryMethod(str, Enum):
    REPLY = "REPLY"
    PUSH = "PUSH"


class DeliveryState(str, Enum):
    RECEIVED = "RECEIVED"
    PENDING = "PENDING"
    UNSENT = "UNSENT"
    SENDING = "SENDING"
    SENT = "SENT"
    UNCONFIRMED = "UNCONFIRMED"
    FAILED = "FAILED"


class LineMode(str, Enum):
    REPLY = "REPLY"
    PUSH = "PUSH"
    AUTO = "AUTO"


class LinePlan(str, Enum):
    FREE = "FREE"
    LIGHT = "LIGHT"
    STANDARD = "STANDARD"


class MappingMode(str, Enum):
    DEPARTMENT = "DEPARTMENT"
    NONE = "NONE"
    VIEW_ONLY = "VIEW_ONLY"
    CHOOSE_AS_NEEDED = "CHOOSE_AS_NEEDED"


class MessageDirection(str, Enum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class MessageKind(str, Enum):
    TEXT = "TEXT"
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"
    FILE = "FILE"
    STICKER = "STICKER"
    LOCATION = "LOCATION"
    LINK = "LINK"
    UNKNOWN = "UNKNOWN"


class MissedCloseWindow(str, Enum):
    FIFTEEN_MINUTES = "FIFTEEN_MINUTES"
    ONE_HOUR = "ONE_HOUR"
    ONE_DAY = "ONE_DAY"
    ONE_WEEK = "ONE_WEEK"
    ONE_MONTH = "ONE_MONTH"


class RecentTicketsScope(str, Enum):
    ALL_DEPARTMENTS = "ALL_DEPARTMENTS"
    MAPPED_ONLY = "MAPPED_ONLY"


class SendWindowState(str, Enum):
    OPEN = "OPEN"
    LIMITED = "LIMITED"
    CLOSED = "CLOSED"


class TicketPriority(str, Enum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class TicketStatus(str, Enum):
    OPEN = "OPEN"
    ON_HOLD = "ON_HOLD"
    ESCALATED = "ESCALATED"
    CLOSED = "CLOSED"
