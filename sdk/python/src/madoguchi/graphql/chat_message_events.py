from pydantic import Field

from .base_model import BaseModel
from .fragments import MessageFields


class ChatMessageEvents(BaseModel):
    chat_messages: "ChatMessageEventsChatMessages" = Field(alias="chatMessages")


class ChatMessageEventsChatMessages(BaseModel):
    cursor: str
    kind: str
    message_id: str = Field(alias="messageId")
    created_at: str = Field(alias="createdAt")
    message: "ChatMessageEventsChatMessagesMessage"


ChatMessageEventsChatMessagesMessage = MessageFields
ChatMessageEvents.model_rebuild()
ChatMessageEventsChatMessages.model_rebuild()
