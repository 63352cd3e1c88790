from pydantic import Field

from .base_model import BaseModel
from .fragments import ChatFields


class MarkChatRead(BaseModel):
    mark_chat_read: "MarkChatReadMarkChatRead" = Field(alias="markChatRead")


MarkChatReadMarkChatRead = ChatFields
MarkChatRead.model_rebuild()
