"""The named SQL statements of settlement. Each runs over whole tables, never per member.

They are written once for SQLite and PostgreSQL: integer division of non-negative
operands truncates in both, and both know UPDATE … FROM and INSERT … ON CONFLICT. The
split alone has a PostgreSQL form (CHARGE_AND_SPLIT), assembled from the same fragments
as the two statements SQLite runs, so that the rule is written once.
"""

from sqlalchemy import bindparam, text

from core.errors import check
from core.schema import Timestamp
from core.settlement.partitions import is_partition

ADD_SUBSCRIBED_FLATTRS = text("""
INSERT INTO flattrs (member_id, thing_id, period, created_at, source)
SELECT DISTINCT s.member_id, s.thing_id, :period, :period_start, 'subscription'
FROM subscriptions s
WHERE s.first_period <= :period AND s.last_period >= :period AND s.cancelled_at IS NULL
ORDER BY s.member_id, s.thing_id
ON CONFLICT (member_id, thing_id, period) DO NOTHING
""").bindparams(bindparam("period_start", type_=Timestamp))

# The flattrs a month splits: those of things that are not the giver's own.
_SPLIT = """
SELECT f.member_id, f.id, f.thing_id, t.owner_id, f.created_at
FROM flattrs f
JOIN things t ON t.id = f.thing_id
WHERE f.period = :period AND (t.owner_id IS NULL OR t.owner_id <> f.member_id)
"""

# Each giver with at least one flattr to split is charged min(budget, giving balance) when
# that reaches the minimum; otherwise nothing and their flattrs are unfunded. The fee is
# floor(charge * bps / 10000), computed in two parts so that the product cannot overflow
# 64 bits. {split} is the month's flattrs to split.
_CHARGES = """
INSERT INTO charges (member_id, period, status, flattr_count, budget_micros, balance_micros,
                     charge_micros, fee_micros, net_micros)
SELECT g.member_id, :period,
       CASE WHEN g.chargeable >= :minimum THEN 'funded' ELSE 'unfunded' END,
       g.flattr_count, g.budget, g.balance,
       CASE WHEN g.chargeable >= :minimum THEN g.chargeable ELSE 0 END,
       CASE WHEN g.chargeable >= :minimum THEN g.fee ELSE 0 END,
       CASE WHEN g.chargeable >= :minimum THEN g.chargeable - g.fee ELSE 0 END
FROM (
    SELECT c.*,
           (c.chargeable / 10000) * :fee_bps + (c.chargeable % 10000) * :fee_bps / 10000 AS fee
    FROM (
        SELECT n.member_id, n.flattr_count,
               COALESCE(m.budget_micros, 0) AS budget, a.balance_micros AS balance,
               CASE WHEN COALESCE(m.budget_micros, 0) < a.balance_micros
                    THEN COALESCE(m.budget_micros, 0) ELSE a.balance_micros END AS chargeable
        FROM (SELECT s.member_id, COUNT(*) AS flattr_count FROM ({split}) s
              GROUP BY s.member_id) n
        JOIN members m ON m.id = n.member_id
        JOIN accounts a ON a.member_id = n.member_id AND a.kind = 'giving'
    ) c
) g
"""

# Every funded flattr gets net // n, and the first net % n in the order received one
# micro more. A share goes to the owner when the owner is an active giver this period
# (funded themself); otherwise it is held. {charges} holds this period's charges.
_SHARES = """
INSERT INTO {target} (giver_id, flattr_id, period, thing_id, owner_id, amount_micros, state)
SELECT r.member_id, r.id, :period, r.thing_id, r.owner_id,
       r.net / r.n + CASE WHEN r.rank <= r.net % r.n THEN 1 ELSE 0 END,
       CASE WHEN owner_charge.member_id IS NULL THEN 'held' ELSE 'paid' END
FROM (
    SELECT s.member_id, s.id, s.thing_id, s.owner_id, c.net_micros AS net, c.flattr_count AS n,
           ROW_NUMBER() OVER (PARTITION BY s.member_id ORDER BY s.created_at, s.id) AS rank
    FROM ({split}) s
    JOIN {charges} c ON c.member_id = s.member_id AND c.period = :period AND c.status = 'funded'
) r
LEFT JOIN {charges} owner_charge
       ON owner_charge.member_id = r.owner_id AND owner_charge.period = :period
      AND owner_charge.status = 'funded'
"""

# SQLite: the charges, then the shares, each from the flattrs.
RECORD_CHARGES = text(_CHARGES.format(split=_SPLIT))
RECORD_SHARES = text(_SHARES.format(target="shares", split=_SPLIT, charges="charges"))

# PostgreSQL: one statement joins the month's flattrs to their things once, charges the
# givers and writes the shares into the month's detached partition (`{{partition}}`).
CHARGE_AND_SPLIT = text(
    f"WITH split AS MATERIALIZED ({_SPLIT}),\n"
    "charged AS ("
    + _CHARGES.format(split="SELECT * FROM split")
    + "RETURNING member_id, period, status, flattr_count, net_micros)"
    + _SHARES.format(target="{partition}", split="SELECT * FROM split", charges="charged")
)

# Under the "charity" policy a member with a budget and no flattr gives it to charity.
RECORD_IDLE_CHARGES = text("""
INSERT INTO charges (member_id, period, status, flattr_count, budget_micros, balance_micros,
                     charge_micros, fee_micros, net_micros)
SELECT i.member_id, CAST(:period AS VARCHAR(7)), 'idle', 0, i.budget, i.balance, i.charge, 0,
       i.charge
FROM (SELECT m.id AS member_id, m.budget_micros AS budget, a.balance_micros AS balance,
             CASE WHEN m.budget_micros < a.balance_micros
                  THEN m.budget_micros ELSE a.balance_micros END AS charge
      FROM members m JOIN accounts a ON a.member_id = m.id AND a.kind = 'giving'
      WHERE m.budget_micros IS NOT NULL) i
WHERE i.charge > 0
  AND NOT EXISTS (SELECT 1 FROM charges c WHERE c.member_id = i.member_id AND c.period = :period)
""")

# Shares of earlier months only: this month's were held at its split because no active
# giver of it owned their thing; a claim verified since releases them itself
# (core/settlement/release.py), or the next settlement does.
RELEASE_HELD_SHARES = text("""
UPDATE shares
SET state = 'released', resolved_period = :period, resolved_by = :resolved_by,
    owner_id = t.owner_id
FROM things t
JOIN charges c ON c.member_id = t.owner_id AND c.period = :period AND c.status = 'funded'
WHERE shares.thing_id = t.id AND shares.state = 'held' AND shares.giver_id <> t.owner_id
  AND shares.period < :period
""")

RETURN_EXPIRED_SHARES = text("""
UPDATE shares
SET state = 'returned', resolved_period = :period, resolved_by = :resolved_by
WHERE state = 'held' AND period <= :cutoff
""")

# --- Ledger, set-based: each stage is one transaction keyed `settle:<period>:<name>`,
# with one posting per member account it moves and one for the pool it balances against.

OPEN_TRANSACTION = text("""
INSERT INTO ledger_transactions (key, kind, period, created_at)
VALUES ('settle:' || :period || ':' || :name, :kind, :period, :now)
RETURNING id
""").bindparams(bindparam("now", type_=Timestamp))

CHARGE_POSTINGS = text("""
INSERT INTO postings (transaction_id, account_id, amount_micros)
SELECT :transaction, a.id, -c.charge_micros
FROM charges c
JOIN accounts a ON a.member_id = c.member_id AND a.kind = 'giving'
WHERE c.period = :period AND c.status = :status AND c.charge_micros > 0
""")

FEE_POSTING = text("""
INSERT INTO postings (transaction_id, account_id, amount_micros)
SELECT :transaction, :fees_account, SUM(c.fee_micros)
FROM charges c
WHERE c.period = :period AND c.status = :status
HAVING SUM(c.fee_micros) > 0
""")

SHARE_POSTINGS = text("""
INSERT INTO postings (transaction_id, account_id, amount_micros)
SELECT :transaction, a.id, g.total
FROM (SELECT s.{member} AS member_id, SUM(s.amount_micros) AS total
      FROM shares s WHERE {shares} GROUP BY s.{member}) g
JOIN accounts a ON a.member_id = g.member_id AND a.kind = :account_kind
WHERE g.total > 0
""")

# Completes the transaction with the posting to (or from) the pool that balances it.
BALANCING_POSTING = text("""
INSERT INTO postings (transaction_id, account_id, amount_micros)
SELECT :transaction, :account, -SUM(p.amount_micros)
FROM postings p
WHERE p.transaction_id = :transaction
HAVING SUM(p.amount_micros) <> 0
""")

APPLY_POSTINGS = text("""
UPDATE accounts
SET balance_micros = accounts.balance_micros + d.delta
FROM (SELECT p.account_id, SUM(p.amount_micros) AS delta
      FROM postings p WHERE p.transaction_id = :transaction
      GROUP BY p.account_id) d
WHERE accounts.id = d.account_id
""")

HAS_POSTINGS = text("SELECT COUNT(*) FROM postings WHERE transaction_id = :transaction")

DROP_EMPTY_TRANSACTION = text("DELETE FROM ledger_transactions WHERE id = :transaction")


START_SETTLEMENT = text("""
INSERT INTO settlements (period, stage, status, fee_bps, minimum_budget_micros, hold_months,
                         idle_budget, started_at)
VALUES (:period, 0, 'settling', :fee_bps, :minimum, :hold_months, :idle_budget, :now)
ON CONFLICT (period) DO NOTHING
""").bindparams(bindparam("now", type_=Timestamp))


def charge_and_split(partition: str):
    """CHARGE_AND_SPLIT writing into the month's partition."""
    check(is_partition(partition), "shares are written into a month's partition")
    return text(CHARGE_AND_SPLIT.text.format(partition=partition))


def share_postings(member_column: str, condition: str):
    """The postings of shares summed per giver or per owner."""
    check(member_column in ("giver_id", "owner_id"), "shares are grouped by giver or owner")
    return text(SHARE_POSTINGS.text.format(member=member_column, shares=condition))
