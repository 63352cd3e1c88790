from typing import Optional

from pydantic import Field

from .base_model import BaseModel
from .fragments import ChatFields


class Chats(BaseModel):
    chats: "ChatsChats"


class ChatsChats(BaseModel):
    edges: list["ChatsChatsEdges"]
    page_info: "ChatsChatsPageInfo" = Field(alias="pageInfo")


class ChatsChatsEdges(BaseModel):
    cursor: str
    node: "ChatsChatsEdgesNode"


ChatsChatsEdgesNode = ChatFields


class ChatsChatsPageInfo(BaseModel):
    has_next_page: bool = Field(alias="hasNextPage")
    end_cursor: Optional[str] = Field(alias="endCursor")


Chats.model_rebuild()
ChatsChats.model_rebuild()
ChatsChatsEdges.model_rebuild()
