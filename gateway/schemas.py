"""Request bodies and query strings: strict types, unknown fields refused."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Amount = Annotated[str, StringConstraints(min_length=1, max_length=40),
                   Field(description="A decimal amount such as \"2.50\" (at most 6 decimals)",
                         examples=["2.50"])]
PeriodText = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$"),
                       Field(examples=["2026-11"])]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048),
                Field(examples=["https://example.com/post"])]
ThingKey = Annotated[str, StringConstraints(min_length=1, max_length=2048),
                     Field(examples=["telegram:-1001234/56"])]
Identity = Annotated[str, StringConstraints(min_length=3, max_length=64),
                     Field(examples=["telegram:12345"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NewMember(Strict):
    handle: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)] | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class NewToken(Strict):
    handle: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    scopes: Annotated[list[Annotated[str, StringConstraints(max_length=20)]],
                      Field(min_length=1, max_length=5)] = ["read", "flattr"]
    label: Annotated[str, StringConstraints(max_length=100)] | None = None


class AmountBody(Strict):
    amount: Amount


class OptionalAmountBody(Strict):
    amount: Amount | None = None


class FlattrBody(Strict):
    url: Url | None = None
    thing: ThingKey | None = None
    author: Identity | None = Field(default=None, description="The chat identity of the "
                                    "post's author (bots only)")
    source: Literal["web", "extension", "automatic", "button"] | None = Field(
        default=None, description="Where the member clicked (chat sources come from the bot)")

    @model_validator(mode="after")
    def one_target(self) -> "FlattrBody":
        if (self.url is None) == (self.thing is None):
            raise ValueError("give exactly one of url or thing")
        return self


class ThingQuery(Strict):
    url: Url | None = None
    thing: ThingKey | None = None

    @model_validator(mode="after")
    def one_target(self) -> "ThingQuery":
        if (self.url is None) == (self.thing is None):
            raise ValueError("give exactly one of url or thing")
        return self


class PeriodQuery(Strict):
    period: PeriodText | None = None


class ClaimBody(Strict):
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    path_prefix: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None


class SubscriptionBody(Strict):
    url: Url | None = None
    thing: ThingKey | None = None
    months: Annotated[int, Field(ge=1, le=120)]

    @model_validator(mode="after")
    def one_target(self) -> "SubscriptionBody":
        if (self.url is None) == (self.thing is None):
            raise ValueError("give exactly one of url or thing")
        return self


class BotLink(Strict):
    identity: Identity
    code: Annotated[str, StringConstraints(min_length=1, max_length=20)]


class BotMember(Strict):
    identity: Identity


class AdminCredit(Strict):
    handle: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    amount: Amount


class AdminSettlement(Strict):
    period: PeriodText
