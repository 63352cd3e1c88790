from pydantic import Field

from .base_model import BaseModel
from .fragments import ChatFields


class ChatEvents(BaseModel):
    chat_events: "ChatEventsChatEvents" = Field(alias="chatEvents")


class ChatEventsChatEvents(BaseModel):
    cursor: str
    kind: str
    chat_id: str = Field(alias="chatId")
    created_at: str = Field(alias="createdAt")
    chat: "ChatEventsChatEventsChat"


ChatEventsChatEventsChat = ChatFields
ChatEvents.model_rebuild()
ChatEventsChatEvents.model_rebuild()
