from pydantic import Field

from .base_model import BaseModel
from .fragments import ChatFields


class LinkChatToContact(BaseModel):
    link_chat_to_contact: "LinkChatToContactLinkChatToContact" = Field(
        alias="linkChatToContact"
    )


LinkChatToContactLinkChatToContact = ChatFields
LinkChatToContact.model_rebuild()
