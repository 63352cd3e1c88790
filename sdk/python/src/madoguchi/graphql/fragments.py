from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .enums import (
    AttachmentStatus,
    ChatStatus,
    CompletionReason,
    DeliveryMethod,
    DeliveryState,
    MessageDirection,
    MessageKind,
    TicketPriority,
    TicketStatus,
)


class ChatFields(BaseModel):
    id: str
    channel_id: str = Field(alias="channelId")
    department_id: str = Field(alias="departmentId")
    status: ChatStatus
    claimed_by: Optional[str] = Field(alias="claimedBy")
    claimed_at: Optional[str] = Field(alias="claimedAt")
    last_message_at: Optional[str] = Field(alias="lastMessageAt")
    last_message_preview: Optional[str] = Field(alias="lastMessagePreview")
    unread_count: int = Field(alias="unreadCount")
    completed_at: Optional[str] = Field(alias="completedAt")
    completion_reason: Optional[CompletionReason] = Field(alias="completionReason")
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")
    end_user: "ChatFieldsEndUser" = Field(alias="endUser")


class ChatFieldsEndUser(BaseModel):
    id: str
    customer_id: str = Field(alias="customerId")
    display_name: Optional[str] = Field(alias="displayName")
    picture_url: Optional[str] = Field(alias="pictureUrl")
    contact_id: Optional[str] = Field(alias="contactId")
    blocked: bool
    unfollowed: bool


class MessageFields(BaseModel):
    id: str
    chat_id: str = Field(alias="chatId")
    direction: MessageDirection
    kind: MessageKind
    text: Optional[str]
    sender_agent_id: Optional[str] = Field(alias="senderAgentId")
    is_passcode: bool = Field(alias="isPasscode")
    delivery_state: DeliveryState = Field(alias="deliveryState")
    delivery_method: Optional[DeliveryMethod] = Field(alias="deliveryMethod")
    delivery_error: Optional[str] = Field(alias="deliveryError")
    created_at: str = Field(alias="createdAt")
    sent_at: Optional[str] = Field(alias="sentAt")
    attachments: list["MessageFieldsAttachments"]


class MessageFieldsAttachments(BaseModel):
    id: str
    kind: MessageKind
    status: AttachmentStatus
    content_type: Optional[str] = Field(alias="contentType")
    size_bytes: Optional[int] = Field(alias="sizeBytes")
    file_name: Optional[str] = Field(alias="fileName")


class TicketFields(BaseModel):
    id: str
    portal_name: str = Field(alias="portalName")
    number: int
    subject: str
    description: Optional[str]
    status: TicketStatus
    priority: TicketPriority
    classification: Optional[str]
    department_id: Optional[str] = Field(alias="departmentId")
    email: Optional[str]
    chat_ids: list[str] = Field(alias="chatIds")
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")


ChatFields.model_rebuild()
MessageFields.model_rebuild()
TicketFields.model_rebuild()
