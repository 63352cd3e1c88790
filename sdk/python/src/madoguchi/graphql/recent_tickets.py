from pydantic import Field

from .base_model import BaseModel
from .fragments import TicketFields


class RecentTickets(BaseModel):
    recent_tickets: list["RecentTicketsRecentTickets"] = Field(alias="recentTickets")


RecentTicketsRecentTickets = TicketFields
RecentTickets.model_rebuild()
