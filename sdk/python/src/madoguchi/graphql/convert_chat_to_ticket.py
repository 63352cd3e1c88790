from pydantic import Field

from .base_model import BaseModel
from .fragments import TicketFields


class ConvertChatToTicket(BaseModel):
    convert_chat_to_ticket: "ConvertChatToTicketConvertChatToTicket" = Field(
        alias="convertChatToTicket"
    )


ConvertChatToTicketConvertChatToTicket = TicketFields
ConvertChatToTicket.model_rebuild()
