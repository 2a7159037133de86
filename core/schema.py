"""The tables. Money columns are BIGINT micro-units guarded by CHECK constraints.

The giver (member_id / giver_id) leads the keys of flattrs, charges and shares, so the
same settlement statements could run on a PostgreSQL sharded by giver.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY
Money = BigInteger
Timestamp = DateTime(timezone=True)

BALANCE_BOUND = 2**62
SYSTEM_ACCOUNT_KINDS = ("external", "fees", "unclaimed", "charity", "payouts", "payouts_sent")
MEMBER_ACCOUNT_KINDS = ("giving", "revenue")  # made with the member
# Made when first needed: what a member owes after a refund or a dispute took back money
# they had already given (core/funding/reversals.py). Its balance is never above zero.
DEBT_ACCOUNT_KIND = "debt"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


members = Table(
    "members",
    metadata,
    Column("id", Id, primary_key=True),
    Column("handle", String(32), nullable=False),
    Column("handle_key", String(32), nullable=False, unique=True),
    Column("email", String(254)),
    Column("password_hash", String(255)),
    Column("budget_micros", Money),
    Column("is_admin", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", Timestamp, nullable=False),
    CheckConstraint("budget_micros IS NULL OR budget_micros > 0", name="budget_positive"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("kind", String(16), nullable=False),
    Column("balance_micros", Money, nullable=False, server_default=text("0")),
    CheckConstraint(
        _in("kind", (*MEMBER_ACCOUNT_KINDS, DEBT_ACCOUNT_KIND, *SYSTEM_ACCOUNT_KINDS)),
        name="kind_known",
    ),
    CheckConstraint(
        f"(member_id IS NULL) = ({_in('kind', SYSTEM_ACCOUNT_KINDS)})", name="owner_matches_kind"
    ),
    # Only the outside world can be owed money: no giving, revenue or pool account goes below
    # zero. A debt account is the outside world's part that one member owes: never above zero.
    CheckConstraint("kind IN ('external', 'debt') OR balance_micros >= 0", name="not_overdrawn"),
    CheckConstraint("kind <> 'debt' OR balance_micros <= 0", name="debt_not_positive"),
    # SQLite turns an overflowing integer sum into a float; this bound refuses it instead.
    CheckConstraint(
        f"balance_micros BETWEEN {-BALANCE_BOUND} AND {BALANCE_BOUND}", name="bounded"
    ),
    UniqueConstraint("member_id", "kind"),
    Index(
        "uq_accounts_system_kind",
        "kind",
        unique=True,
        postgresql_where=text("member_id IS NULL"),
        sqlite_where=text("member_id IS NULL"),
    ),
)

# Every budget a member set, when they set it: a month is charged at the budget in force at
# its end (the last one set before it ended), whenever it is settled; for a month before
# the first one, at that first one. The member's `budget_micros` is the one in force now.
budgets = Table(
    "budgets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("budget_micros", Money, nullable=False),
    Column("set_at", Timestamp, nullable=False),
    CheckConstraint("budget_micros > 0", name="budget_positive"),
    Index("ix_budgets_member_id_set_at", "member_id", "set_at"),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("period", String(7)),
    Column("member_id", Id),
    Column("created_at", Timestamp, nullable=False),
    Column("memo", Text),
    Index("ix_ledger_transactions_kind_period_member", "kind", "period", "member_id"),
)

postings = Table(
    "postings",
    metadata,
    Column("id", Id, primary_key=True),
    # No foreign keys: settlement writes a posting per member account in one statement, and a
    # key check per row would cost more than the rest of the write. Accounts and
    # transactions are never deleted (but a transaction left empty, in the transaction that
    # opened it), and `flattr check` proves that every posting names both.
    Column("transaction_id", Id, nullable=False),
    Column("account_id", Id, nullable=False),
    Column("amount_micros", Money, nullable=False),
    CheckConstraint("amount_micros <> 0", name="amount_nonzero"),
    Index("ix_postings_transaction_id", "transaction_id"),
    Index("ix_postings_account_id", "account_id"),
)

identities = Table(
    "identities",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("identity", String(64), nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
    # Set when a message to it failed for good (the user blocked the bot, closed their DMs):
    # nothing more is sent there until the member turns the channel on again or relinks.
    Column("unreachable_at", Timestamp),
    Column("unreachable_reason", String(200)),
    Index("ix_identities_member_id", "member_id"),
)

things = Table(
    "things",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", String(2100), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("url", Text),
    Column("host", String(255)),
    Column("path", Text),
    Column("author_identity", String(64)),
    Column("owner_id", Id, ForeignKey("members.id")),
    Column("created_at", Timestamp, nullable=False),
    CheckConstraint(_in("kind", ("url", "discord", "telegram")), name="kind_known"),
    Index("ix_things_host", "host"),
    Index("ix_things_author_identity", "author_identity"),
    Index("ix_things_owner_id", "owner_id"),
)

claims = Table(
    "claims",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("host", String(255), nullable=False),
    Column("path_prefix", String(1024), nullable=False, server_default=text("'/'")),
    Column("proof_token", String(64), nullable=False),
    Column("verified_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("member_id", "host", "path_prefix"),
    Index(
        "uq_claims_verified_host_prefix",
        "host",
        "path_prefix",
        unique=True,
        postgresql_where=text("verified_at IS NOT NULL"),
        sqlite_where=text("verified_at IS NOT NULL"),
    ),
)

flattrs = Table(
    "flattrs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("thing_id", Id, ForeignKey("things.id"), nullable=False),
    Column("period", String(7), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("source", String(16), nullable=False, server_default=text("'web'")),
    UniqueConstraint("member_id", "thing_id", "period"),
    Index("ix_flattrs_period_member_id", "period", "member_id"),
    Index("ix_flattrs_thing_id_period", "thing_id", "period"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("thing_id", Id, ForeignKey("things.id"), nullable=False),
    Column("first_period", String(7), nullable=False),
    Column("last_period", String(7), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("cancelled_at", Timestamp),
    CheckConstraint("last_period >= first_period", name="periods_ordered"),
    Index("ix_subscriptions_member_id", "member_id"),
)

settlements = Table(
    "settlements",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("stage", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # The rules a run started with: a resumed run must use the same ones.
    Column("fee_bps", Integer, nullable=False),
    Column("minimum_budget_micros", Money, nullable=False),
    Column("hold_months", Integer, nullable=False),
    Column("idle_budget", String(16), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    CheckConstraint(_in("status", ("settling", "settled")), name="status_known"),
)

# Charges are derived by settlement from members and their accounts (no foreign key, as
# for shares below); a period's rows are written together, so the period leads the key.
charges = Table(
    "charges",
    metadata,
    Column("member_id", Id, nullable=False),
    Column("period", String(7), nullable=False),
    Column("status", String(16), nullable=False),
    Column("flattr_count", Integer, nullable=False),
    Column("budget_micros", Money, nullable=False),
    Column("balance_micros", Money, nullable=False),
    Column("charge_micros", Money, nullable=False),
    Column("fee_micros", Money, nullable=False),
    Column("net_micros", Money, nullable=False),
    PrimaryKeyConstraint("period", "member_id"),
    CheckConstraint(_in("status", ("funded", "unfunded", "idle")), name="status_known"),
    CheckConstraint(
        "charge_micros >= 0 AND fee_micros >= 0 AND net_micros >= 0", name="amounts_nonneg"
    ),
    CheckConstraint("charge_micros = fee_micros + net_micros", name="charge_adds_up"),
    CheckConstraint("charge_micros <= balance_micros", name="charge_covered"),
)

# Shares are derived by settlement from flattrs, things and charges in the same
# transaction; foreign keys would cost four index probes a share and guard nothing that
# the joins producing them do not already ensure (the checks of `flattr check` prove it).
# On PostgreSQL each period is a partition of its own, filled by settlement and indexed
# after it is filled (core/settlement/partitions.py): building an index from sorted rows
# costs a fraction of inserting a million rows into it one by one.
shares = Table(
    "shares",
    metadata,
    Column("giver_id", Id, nullable=False),
    Column("flattr_id", Id, nullable=False),
    Column("period", String(7), nullable=False),
    Column("thing_id", Id, nullable=False),
    Column("owner_id", Id),
    Column("amount_micros", Money, nullable=False),
    Column("state", String(16), nullable=False),
    Column("resolved_period", String(7)),
    # Which run released or returned it ("settle:2026-11:release", "claim:42"): the
    # ledger transaction of that run is built from exactly these rows.
    Column("resolved_by", String(64)),
    PrimaryKeyConstraint("period", "giver_id", "flattr_id"),
    CheckConstraint("amount_micros >= 0", name="amount_nonneg"),
    CheckConstraint(_in("state", ("paid", "held", "released", "returned")), name="state_known"),
    Index(
        "ix_shares_held_thing_id",
        "thing_id",
        postgresql_where=text("state = 'held'"),
        sqlite_where=text("state = 'held'"),
    ),
    Index(
        "ix_shares_resolved_by",
        "resolved_by",
        postgresql_where=text("resolved_by IS NOT NULL"),
        sqlite_where=text("resolved_by IS NOT NULL"),
    ),
    postgresql_partition_by="LIST (period)",
)

# Money that entered from outside: each ledger transaction that takes money from `external`
# names its funding (or its payout, for money leaving): `flattr check` proves it.
fundings = Table(
    "fundings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("amount_micros", Money, nullable=False),
    Column("transaction_id", Id, nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
    CheckConstraint("amount_micros > 0", name="amount_positive"),
    Index("ix_fundings_member_id", "member_id"),
)

# requested (money in `payouts`) → sent in a batch (in `payouts_sent`) → paid (to `external`)
# or failed (back to revenue); an admin may also mark a requested payout paid or failed.
PAYOUT_STATES = ("requested", "sent", "paid", "failed")
payouts = Table(
    "payouts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("amount_micros", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("resolved_at", Timestamp),
    # The credit-transfer file it was sent in (`flattr payout batch`), once sent.
    Column("batch_id", Id),
    CheckConstraint("amount_micros > 0", name="amount_positive"),
    CheckConstraint("amount_micros % 10000 = 0", name="whole_cents"),
    CheckConstraint(_in("status", PAYOUT_STATES), name="status_known"),
    CheckConstraint("status <> 'sent' OR batch_id IS NOT NULL", name="sent_in_a_batch"),
    Index("ix_payouts_member_id", "member_id"),
    Index("ix_payouts_batch_id", "batch_id"),
)

# Where a member's payouts go: a SEPA account, the IBAN as the IBAN library prints it
# compactly and the holder's name as the bank will read it.
payout_accounts = Table(
    "payout_accounts",
    metadata,
    Column("member_id", Id, ForeignKey("members.id"), primary_key=True),
    Column("iban", String(34), nullable=False),
    Column("bic", String(11)),
    Column("holder_name", String(70), nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

# One credit-transfer file for the platform's bank: its message id names it in the file,
# and the file itself is kept, so that it can be written again and its answer checked.
payout_batches = Table(
    "payout_batches",
    metadata,
    Column("id", Id, primary_key=True),
    Column("method", String(16), nullable=False),
    Column("message_id", String(35), nullable=False, unique=True),
    Column("payout_count", Integer, nullable=False),
    Column("total_micros", Money, nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    CheckConstraint("payout_count > 0 AND total_micros > 0", name="not_empty"),
)

# Money taken back from a funding by its source (a card refund, a dispute): it leaves to
# `external` from the member's giving balance and, for what giving no longer holds, from
# their debt account. `reference` is the source's name for it (an event, a dispute). A
# dispute the platform won brings the money back, once: its reinstatement's transaction.
REVERSAL_KINDS = ("refund", "dispute")
funding_reversals = Table(
    "funding_reversals",
    metadata,
    Column("id", Id, primary_key=True),
    Column("funding_id", Id, ForeignKey("fundings.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reference", String(255), nullable=False),
    Column("amount_micros", Money, nullable=False),
    Column("debt_micros", Money, nullable=False),
    Column("transaction_id", Id, nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
    Column("reinstated_transaction_id", Id, unique=True),
    Column("reinstated_at", Timestamp),
    UniqueConstraint("kind", "reference"),
    CheckConstraint(_in("kind", REVERSAL_KINDS), name="kind_known"),
    CheckConstraint("amount_micros > 0 AND debt_micros >= 0 AND debt_micros <= amount_micros",
                    name="amounts_valid"),
    CheckConstraint("(reinstated_transaction_id IS NULL AND reinstated_at IS NULL) OR "
                    "(kind = 'dispute' AND reinstated_transaction_id IS NOT NULL "
                    "AND reinstated_at IS NOT NULL)", name="only_disputes_reinstated"),
    Index("ix_funding_reversals_funding_id", "funding_id"),
)

# Stripe Checkout sessions the gateway opened: what the member is credited once paid and
# the card fee they paid on top. `payment_intent` links later refunds and disputes to it;
# `refunded_micros` is the largest running total of refunds Stripe told (at most the amount).
CHECKOUT_STATES = ("open", "paid", "expired")
stripe_checkouts = Table(
    "stripe_checkouts",
    metadata,
    Column("session_id", String(255), primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("amount_micros", Money, nullable=False),
    Column("fee_micros", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("payment_intent", String(255), unique=True),
    Column("funding_id", Id, unique=True),
    Column("created_at", Timestamp, nullable=False),
    Column("completed_at", Timestamp),
    Column("refunded_micros", Money, nullable=False, server_default=text("0")),
    CheckConstraint(_in("status", CHECKOUT_STATES), name="status_known"),
    CheckConstraint("refunded_micros >= 0 AND refunded_micros <= amount_micros",
                    name="refunded_within_amount"),
    CheckConstraint("amount_micros > 0 AND fee_micros >= 0", name="amounts_valid"),
    CheckConstraint("(status = 'paid') = (funding_id IS NOT NULL)", name="paid_is_funded"),
    Index("ix_stripe_checkouts_member_id", "member_id"),
)

# Every Stripe event received, by its id: a second delivery is answered and does nothing.
# An event about a payment not yet known (a refund before its checkout completed) waits,
# its payload kept, and is applied when that payment is credited.
STRIPE_EVENT_STATES = ("done", "ignored", "waiting")
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("waiting_for", String(255)),
    Column("payload", Text),
    Column("note", String(200)),
    Column("received_at", Timestamp, nullable=False),
    Column("done_at", Timestamp),
    CheckConstraint(_in("state", STRIPE_EVENT_STATES), name="state_known"),
    CheckConstraint("state <> 'waiting' OR (waiting_for IS NOT NULL AND payload IS NOT NULL)",
                    name="waiting_keeps_payload"),
    Index(
        "ix_stripe_events_waiting_for",
        "waiting_for",
        postgresql_where=text("state = 'waiting'"),
        sqlite_where=text("state = 'waiting'"),
    ),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(200), nullable=False),
    Column("label", String(100)),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp),
    Index("ix_api_tokens_member_id", "member_id"),
)

link_codes = Table(
    "link_codes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
)

# Answers kept for Idempotency-Key: the same key and request replay the first answer.
stored_replies = Table(
    "stored_replies",
    metadata,
    Column("scope", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer),
    Column("body", Text),
    Column("created_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("scope", "key"),
    Index("ix_stored_replies_created_at", "created_at"),
)


# What a member is told: a monthly summary, a reminder. One per member, period and kind,
# stored as its data (JSON) and its rendered forms; the web inbox shows these rows.
# No foreign keys here or in outbox_deliveries: a month's summaries are written at once and
# a key check per row cost a tenth of that stage. Members and messages are never deleted, a
# delivery is made from its message in one statement, and `flattr check` proves both.
OUTBOX_KINDS = ("summary", "reminder")
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, nullable=False),
    Column("period", String(7), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("data", Text, nullable=False),
    Column("text", Text, nullable=False),  # plain text, within Discord's 2,000 characters
    Column("html", Text, nullable=False),  # a short e-mail
    Column("created_at", Timestamp, nullable=False),
    Column("read_at", Timestamp),
    CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind_known"),
    UniqueConstraint("member_id", "period", "kind"),
    Index("ix_outbox_member_id_id", "member_id", "id"),
)

# Each message's way to each channel the member chose; the web inbox needs none.
# `available_at` is when it may be handed out next: after a back-off, or when its lease ends.
DELIVERY_CHANNELS = ("telegram", "discord", "email")
DELIVERY_STATES = ("pending", "leased", "sent", "dead", "unreachable")
outbox_deliveries = Table(
    "outbox_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("message_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(254), nullable=False),  # "telegram:123", or an e-mail address
    Column("state", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("available_at", Timestamp, nullable=False),
    Column("last_error", String(500)),
    Column("created_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp),
    CheckConstraint(_in("channel", DELIVERY_CHANNELS), name="channel_known"),
    CheckConstraint(_in("state", DELIVERY_STATES), name="state_known"),
    UniqueConstraint("message_id", "channel", "address"),
    Index(
        "ix_outbox_deliveries_waiting",
        "channel",
        "available_at",
        postgresql_where=text("state IN ('pending', 'leased')"),
        sqlite_where=text("state IN ('pending', 'leased')"),
    ),
    Index(
        "ix_outbox_deliveries_unsent",
        "state",
        postgresql_where=text("state <> 'sent'"),
        sqlite_where=text("state <> 'sent'"),
    ),
)

# The channels a member chose; no row means the defaults (chats and reminders on, e-mail off).
notification_settings = Table(
    "notification_settings",
    metadata,
    Column("member_id", Id, ForeignKey("members.id"), primary_key=True),
    Column("telegram", Boolean, nullable=False, server_default=text("true")),
    Column("discord", Boolean, nullable=False, server_default=text("true")),
    Column("email", Boolean, nullable=False, server_default=text("false")),
    Column("reminders", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", Timestamp, nullable=False),
)

# A chat's settings for the bots: a Telegram group or channel (`telegram:-1001234`) or a
# Discord server (`discord:<guild>`). No row: the defaults (the bot's own emoji, no owner,
# every channel). `owner_identity` is the chat identity of whoever claimed a Telegram channel:
# its posts are theirs. `channels` are the ids the bot is limited to, comma-separated.
chat_settings = Table(
    "chat_settings",
    metadata,
    Column("chat", String(32), primary_key=True),
    Column("emoji", String(64)),
    Column("owner_identity", String(64)),
    Column("channels", Text, nullable=False, server_default=text("''")),
    Column("updated_at", Timestamp, nullable=False),
    CheckConstraint("chat LIKE 'telegram:%' OR chat LIKE 'discord:%'", name="network_known"),
)

# The web pages' sessions: the cookie carries a random secret, the row only its hash. A
# session ends when its member signs out (ended_at) or when it expires.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp),
    Index("ix_web_sessions_member_id", "member_id"),
)

# One-time sign-in links a chat bot hands a member made in chat (who has no password).
sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("id", Id, primary_key=True),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("identity", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
)
