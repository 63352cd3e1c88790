from pydantic import Field

from .base_model import BaseModel
from .fragments import TicketFields


class SetTicketStatus(BaseModel):
    set_ticket_status: "SetTicketStatusSetTicketStatus" = Field(alias="setTicketStatus")


SetTicketStatusSetTicketStatus = TicketFields
SetTicketStatus.model_rebuild()
