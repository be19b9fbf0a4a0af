"""`plugins.hello`: validated by soko at startup, with every problem reported at once."""

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class HelloSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str = Field(default="Hello", min_length=1, max_length=40)
    api_token: SecretStr = Field(description="a secret, to show how plugins take one: environment only")
