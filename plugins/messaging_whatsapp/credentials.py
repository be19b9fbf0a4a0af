"""One shop's WhatsApp account, kept encrypted in the kernel's credential store under the name `whatsapp`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

_GRAPH_ID = r"^[0-9]{1,32}$"


class WhatsAppCredentials(BaseModel):
    """`soko credentials set TENANT whatsapp` with `{"phone_number_id", "waba_id", "access_token"}` on stdin.

    `phone_number_id` is the routing key: Meta's webhooks for every shop arrive at one URL and name it.
    """

    model_config = ConfigDict(extra="forbid")

    phone_number_id: str = Field(pattern=_GRAPH_ID, json_schema_extra={"routing_key": True})
    waba_id: str = Field(pattern=_GRAPH_ID)
    access_token: SecretStr = Field(min_length=8)
