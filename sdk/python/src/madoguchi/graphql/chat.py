from .base_model import BaseModel
from .fragments import ChatFields


class Chat(BaseModel):
    chat: "ChatChat"


ChatChat = ChatFields
Chat.model_rebuild()
