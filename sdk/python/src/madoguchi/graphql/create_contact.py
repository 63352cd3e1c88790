from typing import Optional

from pydantic import Field

from .base_model import BaseModel


class CreateContact(BaseModel):
    create_contact: "CreateContactCreateContact" = Field(alias="createContact")


class CreateContactCreateContact(BaseModel):
    id: str
    name: str
    email: Optional[str]


CreateContact.model_rebuild()
