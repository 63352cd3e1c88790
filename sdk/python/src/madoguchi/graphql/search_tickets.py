from pydantic import Field

from .base_model import BaseModel
from .fragments import TicketFields


class SearchTickets(BaseModel):
    search_tickets: list["SearchTicketsSearchTickets"] = Field(alias="searchTickets")


SearchTicketsSearchTickets = TicketFields
SearchTickets.model_rebuild()
