from pydantic import Field

from .base_model import BaseModel
from .fragments import TicketFields


class MergeChatIntoTicket(BaseModel):
    merge_chat_into_ticket: "MergeChatIntoTicketMergeChatIntoTicket" = Field(
        alias="mergeChatIntoTicket"
    )


MergeChatIntoTicketMergeChatIntoTicket = TicketFields
MergeChatIntoTicket.model_rebuild()
