from pydantic import Field

from .base_model import BaseModel
from .enums import AgentRole


class Me(BaseModel):
    me: "MeMe"


class MeMe(BaseModel):
    id: str
    email: str
    name: str
    role: AgentRole
    department_ids: list[str] = Field(alias="departmentIds")


Me.model_rebuild()
