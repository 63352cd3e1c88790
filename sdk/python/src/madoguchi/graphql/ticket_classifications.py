from pydantic import Field

from .base_model import BaseModel


class TicketClassifications(BaseModel):
    ticket_classifications: list[str] = Field(alias="ticketClassifications")
