from pydantic import Field

from .base_model import BaseModel
from .fragments import ChatFields


class CompleteChat(BaseModel):
    complete_chat: "CompleteChatCompleteChat" = Field(alias="completeChat")


CompleteChatCompleteChat = ChatFields
CompleteChat.model_rebuild()
