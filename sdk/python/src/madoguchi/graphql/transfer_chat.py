from pydantic import Field

from .base_model import BaseModel
from .fragments import ChatFields


class TransferChat(BaseModel):
    transfer_chat: "TransferChatTransferChat" = Field(alias="transferChat")


TransferChatTransferChat = ChatFields
TransferChat.model_rebuild()
