from .base_model import BaseModel
from .fragments import MessageFields


class ChatMessages(BaseModel):
    chat: "ChatMessagesChat"


class ChatMessagesChat(BaseModel):
    id: str
    messages: list["ChatMessagesChatMessages"]


ChatMessagesChatMessages = MessageFields
ChatMessages.model_rebuild()
ChatMessagesChat.model_rebuild()
