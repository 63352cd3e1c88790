from typing import Optional

from pydantic import Field

from .base_model import BaseModel


class DeskInformation(BaseModel):
    desk_information: Optional["DeskInformationDeskInformation"] = Field(
        alias="deskInformation"
    )


class DeskInformationDeskInformation(BaseModel):
    portal_name: str = Field(alias="portalName")
    contact_name: str = Field(alias="contactName")
    email: Optional[str]
    account_name: Optional[str] = Field(alias="accountName")
    sla_name: Optional[str] = Field(alias="slaName")
    contract_name: Optional[str] = Field(alias="contractName")
    owner_name: Optional[str] = Field(alias="ownerName")


DeskInformation.model_rebuild()
