from pydantic import Field

from .base_model import BaseModel
from .fragments import MessageFields


class SendImage(BaseModel):
    send_image: "SendImageSendImage" = Field(alias="sendImage")


SendImageSendImage = MessageFields
SendImage.model_rebuild()
