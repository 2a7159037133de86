"""Who is calling: the member behind a bearer token, or a bot acting for a chat identity."""

from dataclasses import dataclass
from functools import cached_property

from core.errors import InsufficientScope

BOT_ACTS_WITH = frozenset({"read", "flattr"})


@dataclass(frozen=True)
class Principal:
    member_id: int
    token_id: int
    scopes: frozenset[str]
    acting_for: str | None = None  # the chat identity a bot token acts for

    def require(self, scope: str | tuple[str, ...]) -> None:
        """The token has the scope, or one of the alternatives given."""
        if isinstance(scope, str):
            scope = (scope,)
        if self.scopes.isdisjoint(scope):
            raise InsufficientScope("this needs a token with the "
                                    + " or the ".join(repr(s) for s in scope) + " scope")

    @cached_property
    def rate_key(self) -> str:
        return f"token:{self.token_id}:{self.acting_for or ''}"

    @property
    def is_bot(self) -> bool:
        """A bot's token, on its own errands or acting for a chat user."""
        return self.acting_for is not None or "bot" in self.scopes

    @cached_property
    def bot_key(self) -> str:
        return f"bot:{self.token_id}"
