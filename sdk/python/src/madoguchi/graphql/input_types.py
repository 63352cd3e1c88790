from typing import Optional

from pydantic import Field

from .base_model import BaseModel, Upload
from .enums import (
    AgentRole,
    ChatStatus,
    LineMode,
    LinePlan,
    MissedCloseWindow,
    TicketPriority,
    TicketStatus,
)


class ChannelTimersInput(BaseModel):
    """A channel's chat timers; a null turns one off."""

    auto_ticket_after_seconds: Optional[int] = Field(
        alias="autoTicketAfterSeconds", default=None
    )
    "60 seconds up to 30 days."
    missed_close_after: Optional[MissedCloseWindow] = Field(
        alias="missedCloseAfter", default=None
    )
    idle_close_after_seconds: Optional[int] = Field(
        alias="idleCloseAfterSeconds", default=None
    )
    "60 seconds up to 24 hours."


class ChatFilterInput(BaseModel):
    statuses: Optional[list[ChatStatus]] = None
    channel_id: Optional[str] = Field(alias="channelId", default=None)
    department_id: Optional[str] = Field(alias="departmentId", default=None)
    claimed_by: Optional[str] = Field(alias="claimedBy", default=None)
    customer_id: Optional[str] = Field(alias="customerId", default=None)
    "The provider's id of the consumer (LINE userId), exactly."
    customer_name: Optional[str] = Field(alias="customerName", default=None)
    "Part of the consumer's or linked contact's name."
    phone: Optional[str] = None
    "Part of the linked contact's phone number."
    linked: Optional[bool] = None
    "Only chats linked (`true`) or not linked (`false`) to a contact."


class ContactInput(BaseModel):
    name: Optional[str] = None
    email: Optional[str] = None
    phone: Optional[str] = None
    account_name: Optional[str] = Field(alias="accountName", default=None)
    sla_name: Optional[str] = Field(alias="slaName", default=None)
    contract_name: Optional[str] = Field(alias="contractName", default=None)
    owner_name: Optional[str] = Field(alias="ownerName", default=None)


class ConvertChatInput(BaseModel):
    """What the agent chooses when converting a chat; taken where the chat's
    department maps as `CHOOSE_AS_NEEDED` (a mapped department decides them
    otherwise)."""

    subject: Optional[str] = None
    helpdesk_department_id: Optional[str] = Field(
        alias="helpdeskDepartmentId", default=None
    )
    priority: Optional[TicketPriority] = None
    status: Optional[TicketStatus] = None
    classification: Optional[str] = None


class CreateAgentInput(BaseModel):
    email: str
    name: str
    role: AgentRole
    password: str
    department_ids: list[str] = Field(alias="departmentIds", default_factory=lambda: [])


class CreateLineChannelInput(BaseModel):
    name: str
    icon: Optional[Upload] = None
    "JPEG or PNG, at most 1 MB (GraphQL multipart upload)."
    channel_id: str = Field(alias="channelId")
    channel_secret: str = Field(alias="channelSecret")
    channel_access_token: str = Field(alias="channelAccessToken")
    department_id: str = Field(alias="departmentId")
    mode: LineMode
    plan: LinePlan


class CreateWechatChannelInput(BaseModel):
    name: str
    icon: Optional[Upload] = None
    "JPEG or PNG, at most 1 MB (GraphQL multipart upload)."
    original_id: str = Field(alias="originalId")
    "The account's Original ID (`gh_…`)."
    app_id: str = Field(alias="appId")
    app_secret: str = Field(alias="appSecret")
    department_id: str = Field(alias="departmentId")
    existing_token: Optional[str] = Field(alias="existingToken", default=None)
    "For an account already configured elsewhere: its Token and\nEncodingAESKey (both, or neither for new ones)."
    existing_encoding_aes_key: Optional[str] = Field(
        alias="existingEncodingAesKey", default=None
    )


class LinkHelpdeskInput(BaseModel):
    admin_email: str = Field(alias="adminEmail")
    portal_name: str = Field(alias="portalName")
    zsc_key: Optional[str] = Field(alias="zscKey", default=None)
    "Not needed for the caller's own portal."


class LoginInput(BaseModel):
    email: str
    password: str
    portal: Optional[str] = None
    "Needed only when the email belongs to agents of several portals."


class UpdateAgentInput(BaseModel):
    name: Optional[str] = None
    role: Optional[AgentRole] = None
    active: Optional[bool] = None
    password: Optional[str] = None
    department_ids: Optional[list[str]] = Field(alias="departmentIds", default=None)


class UpdateLineChannelInput(BaseModel):
    name: Optional[str] = None
    icon: Optional[Upload] = None
    channel_secret: Optional[str] = Field(alias="channelSecret", default=None)
    channel_access_token: Optional[str] = Field(
        alias="channelAccessToken", default=None
    )
    department_id: Optional[str] = Field(alias="departmentId", default=None)
    "Changing the department removes the channel's agent associations."
    mode: Optional[LineMode] = None
    plan: Optional[LinePlan] = None


class UpdateWechatChannelInput(BaseModel):
    """The account itself (AppID, Original ID) does not change: consumers'
    OpenIDs belong to it, so another account is another channel."""

    name: Optional[str] = None
    icon: Optional[Upload] = None
    app_secret: Optional[str] = Field(alias="appSecret", default=None)
    "Checked with WeChat before it is stored."
    department_id: Optional[str] = Field(alias="departmentId", default=None)
    "Changing the department removes the channel's agent associations."
