from pydantic import Field

from .base_model import BaseModel
from .enums import AgentRole


class Login(BaseModel):
    login: "LoginLogin"


class LoginLogin(BaseModel):
    token: str
    expires_at: str = Field(alias="expiresAt")
    agent: "LoginLoginAgent"


class LoginLoginAgent(BaseModel):
    id: str
    email: str
    name: str
    role: AgentRole


Login.model_rebuild()
LoginLogin.model_rebuild()
