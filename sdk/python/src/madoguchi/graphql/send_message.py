from pydantic import Field

from .base_model import BaseModel
from .fragments import MessageFields


class SendMessage(BaseModel):
    send_message: "SendMessageSendMessage" = Field(alias="sendMessage")


SendMessageSendMessage = MessageFields
SendMessage.model_rebuild()
