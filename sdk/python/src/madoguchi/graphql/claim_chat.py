from pydantic import Field

from .base_model import BaseModel
from .fragments import ChatFields


class ClaimChat(BaseModel):
    claim_chat: "ClaimChatClaimChat" = Field(alias="claimChat")


ClaimChatClaimChat = ChatFields
ClaimChat.model_rebuild()
