"""Request bodies and query strings: strict types, unknown fields refused."""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

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


ChannelId = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,19}$"),
                      Field(examples=["1234567890"])]


class ChatSettingsBody(Strict):
    """What is left out stays as it is; GET's read-only fields may be sent back."""

    emoji: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The flattr emoji (a Discord server's own as `name:id`); "
        "null: the bot's default", examples=["👍"])
    owner: Identity | None = Field(
        default=None, description="The chat identity who claimed the chat: its posts are "
        "that identity's member's; null: no owner")
    channels: Annotated[list[ChannelId], Field(max_length=100)] = Field(
        default_factory=list, description="The channels the bot flattrs in; []: every one")
    # Read-only, as GET shows them: `chat` must name this chat, the others are ignored.
    chat: Annotated[str, StringConstraints(max_length=40)] | None = None
    updated_at: Annotated[str, StringConstraints(max_length=40)] | None = None
    currency: Annotated[str, StringConstraints(max_length=10)] | None = None

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("emoji", "owner", "channels")
                if name in self.model_fields_set}


class AdminCredit(Strict):
    handle: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    amount: Amount


class AdminSettlement(Strict):
    period: PeriodText


# --- the outbox, the web inbox and the member's channels ---------------------------------------

class OutboxLease(Strict):
    platform: Literal["telegram", "discord"] = Field(
        description="The chat network the bot sends to (e-mail is sent by the worker itself)")
    max: Annotated[int, Field(ge=1, le=500)] = 50
    lease_seconds: Annotated[int, Field(ge=5, le=900)] = 60
    wait: Annotated[int, Field(ge=0, le=30, description="Seconds to wait for a message when "
                                                        "none is due (long poll)")] = 0

    @field_validator("platform", mode="before")
    @classmethod
    def not_email(cls, value: object) -> object:
        if value == "email":
            raise ValueError("e-mail is sent by the worker through SMTP, not leased over HTTP")
        return value


class OutboxFail(Strict):
    """Neither retry_after nor permanent: a plain retry after the back-off."""

    retry_after: Annotated[int, Field(ge=0, le=7 * 24 * 3600, description="Seconds before the "
                                      "next try (the back-off may make it longer)")] | None = None
    permanent: bool = Field(
        default=False, description="The address will never take a message (blocked, DMs closed)")
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None

    @model_validator(mode="after")
    def one_outcome(self) -> "OutboxFail":
        if self.permanent and self.retry_after is not None:
            raise ValueError("a permanent failure is never retried: give retry_after or "
                             "permanent, not both")
        return self


RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class OutboxAckMany(Strict):
    ids: Annotated[list[RowId], Field(min_length=1, max_length=500)]


class Lax(BaseModel):
    """A query string: its values arrive as text, so numbers and booleans are parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MessagesQuery(Lax):
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    before: Annotated[RowId, Field(description="The `next` of the previous page")] | None = None
    unread: bool = False


class WaitingQuery(Lax):
    identity: Identity


class OutboxQuery(Lax):
    state: Literal["pending", "leased", "sent", "dead", "unreachable"] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class ChannelChoice(Strict):
    web: Literal[True] | None = Field(default=None, description="Always on: it may be sent "
                                      "back as GET shows it, not turned off")
    telegram: bool | None = None
    discord: bool | None = None
    email: bool | None = None

    @field_validator("web", mode="before")
    @classmethod
    def always_on(cls, value: object) -> object:
        if value is not None and value is not True:
            raise ValueError("the web inbox is always on: leave web out or send it true")
        return value


CHOSEN_CHANNELS = ("telegram", "discord", "email")


class NotificationChoice(Strict):
    """Channels flat (`{"email": true}`) or in `channels` as GET shows them, not both."""

    telegram: bool | None = None
    discord: bool | None = None
    email: bool | None = None
    channels: ChannelChoice | None = None
    reminders: bool | None = None
    # The rest of what GET shows, so that it can be sent back: read-only, ignored.
    currency: Annotated[str, StringConstraints(max_length=10)] | None = None
    email_address: Annotated[str, StringConstraints(max_length=254)] | None = None
    identities: Annotated[list[dict[str, Any]], Field(max_length=1000)] | None = None

    @model_validator(mode="after")
    def one_shape(self) -> "NotificationChoice":
        flat = [name for name in CHOSEN_CHANNELS if name in self.model_fields_set]
        if self.channels is not None and flat:
            raise ValueError(f"give the channels flat or in channels, not both ({flat[0]!r} "
                             "and 'channels')")
        return self

    def changes(self) -> dict[str, bool]:
        """What to turn on or off; what is left out stays as it is."""
        source = self.channels if self.channels is not None else self
        chosen = {name: getattr(source, name) for name in CHOSEN_CHANNELS}
        chosen["reminders"] = self.reminders
        return {name: on for name, on in chosen.items() if on is not None}


class AmountQuery(Strict):
    amount: Amount


class PayoutAccountBody(Strict):
    iban: Annotated[str, StringConstraints(min_length=5, max_length=64),
                    Field(examples=["DE89 3704 0044 0532 0130 00"])]
    name: Annotated[str, StringConstraints(min_length=1, max_length=70),
                    Field(description="The account holder's name, as the bank knows it")]
    bic: Annotated[str, StringConstraints(min_length=8, max_length=11)] | None = None
