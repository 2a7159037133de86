"""The named SQL statements of settlement. Each runs over whole tables, never per member.

They are written once for SQLite and PostgreSQL: integer division of non-negative
operands truncates in both, and both know window functions, UPDATE … FROM and
INSERT … ON CONFLICT.
"""

from sqlalchemy import bindparam, text

from core.errors import check
from core.schema import Timestamp

# A subscription cancelled after the month ended (while it waited to be settled) still
# gives that month its flattr; one cancelled during the month does not. A member who owes
# money (their debt account below zero) gets none: while in debt they cannot flattr.
ADD_SUBSCRIBED_FLATTRS = text("""
INSERT INTO flattrs (member_id, thing_id, period, created_at, source)
SELECT DISTINCT s.member_id, s.thing_id, :period, :period_start, 'subscription'
FROM subscriptions s
WHERE s.first_period <= :period AND s.last_period >= :period
  AND (s.cancelled_at IS NULL OR s.cancelled_at >= :period_end)
  AND NOT EXISTS (SELECT 1 FROM accounts d WHERE d.member_id = s.member_id
                  AND d.kind = 'debt' AND d.balance_micros < 0)
ORDER BY s.member_id, s.thing_id
ON CONFLICT (member_id, thing_id, period) DO NOTHING
""").bindparams(bindparam("period_start", type_=Timestamp),
                bindparam("period_end", type_=Timestamp))

# The budget in force at the end of the month: the last one the member set before it
# ended. A member who set none by then is charged at the first one they set (they
# flattred before choosing it). One row a member, from one ordered pass over `budgets`
# (a probe a giver costs more, and a subquery is run again for each use of its column):
# the budgets set before the end, latest first, then those set after it, earliest first.
_BUDGETS_IN_FORCE = """
SELECT r.member_id, r.budget_micros, r.set_before_end
FROM (SELECT b.member_id, b.budget_micros,
             CASE WHEN b.set_at < :period_end THEN 1 ELSE 0 END AS set_before_end,
             ROW_NUMBER() OVER (
                 PARTITION BY b.member_id
                 ORDER BY CASE WHEN b.set_at < :period_end THEN 0 ELSE 1 END,
                          CASE WHEN b.set_at < :period_end THEN b.set_at END DESC,
                          b.set_at,
                          CASE WHEN b.set_at < :period_end THEN -b.id ELSE b.id END
             ) AS rank
      FROM budgets b) r
WHERE r.rank = 1
"""

# How many of each giver's flattrs of the month are split: all of them but those of
# things the giver owns. Counted per giver, less the few self-flattrs (made before the
# thing's claim was verified), found by looking up each owned thing's owner among its
# flattrers (one probe of the flattrs key; a scalar subquery, which the planner keeps a
# probe, where EXISTS becomes a hash join of all the month's flattrs with the things).
_SPLIT_COUNTS = """
SELECT n.member_id, n.flattrs - COALESCE(o.own, 0) AS flattr_count
FROM (SELECT f.member_id, COUNT(*) AS flattrs FROM flattrs f
      WHERE f.period = :period GROUP BY f.member_id) n
LEFT JOIN (SELECT t.owner_id AS member_id, COUNT(*) AS own FROM things t
           WHERE t.owner_id IS NOT NULL
             AND (SELECT f.id FROM flattrs f WHERE f.member_id = t.owner_id
                  AND f.thing_id = t.id AND f.period = :period) IS NOT NULL
           GROUP BY t.owner_id) o ON o.member_id = n.member_id
WHERE n.flattrs > COALESCE(o.own, 0)
"""

# Each giver with at least one flattr to split is charged min(budget, giving balance) when
# that reaches the minimum; otherwise nothing and their flattrs are unfunded. The fee is
# floor(charge * bps / 10000), computed in two parts so that the product cannot overflow
# 64 bits.
RECORD_CHARGES = text(f"""
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
               COALESCE(b.budget_micros, 0) AS budget, a.balance_micros AS balance,
               CASE WHEN COALESCE(b.budget_micros, 0) < a.balance_micros
                    THEN COALESCE(b.budget_micros, 0) ELSE a.balance_micros END AS chargeable
        FROM ({_SPLIT_COUNTS}) n
        JOIN accounts a ON a.member_id = n.member_id AND a.kind = 'giving'
        LEFT JOIN ({_BUDGETS_IN_FORCE}) b ON b.member_id = n.member_id
    ) c
) g
""").bindparams(bindparam("period_end", type_=Timestamp))

# Every split flattr of a funded giver gets net // n, and the first net % n in the order
# received one micro more. A share goes to the thing's owner when the owner is an active
# giver this period (funded themself); otherwise it is held. Only owned things are joined
# (most things never get an owner): a flattr of any other is held. Every column of
# `shares`, by name: SQLite inserts these rows, PostgreSQL makes the month's partition of
# them (core/settlement/partitions.py).
SPLIT_SHARES = text("""
SELECT r.member_id AS giver_id, r.id AS flattr_id, :period AS period, r.thing_id,
       r.owner_id, r.net / r.n + CASE WHEN r.rank <= r.net % r.n THEN 1 ELSE 0 END
       AS amount_micros, r.state, NULL AS resolved_period, NULL AS resolved_by
FROM (
    SELECT f.member_id, f.id, f.thing_id, t.owner_id, c.net_micros AS net, c.flattr_count AS n,
           CASE WHEN owner_charge.member_id IS NULL THEN 'held' ELSE 'paid' END AS state,
           ROW_NUMBER() OVER (PARTITION BY f.member_id ORDER BY f.created_at, f.id) AS rank
    FROM charges c
    JOIN flattrs f ON f.member_id = c.member_id AND f.period = :period
    LEFT JOIN things t ON t.id = f.thing_id AND t.owner_id IS NOT NULL
    LEFT JOIN charges owner_charge
           ON owner_charge.member_id = t.owner_id AND owner_charge.period = :period
          AND owner_charge.status = 'funded'
    WHERE c.period = :period AND c.status = 'funded'
      AND (t.owner_id IS NULL OR t.owner_id <> f.member_id)
) r
""")

SHARE_COLUMNS = ("giver_id, flattr_id, period, thing_id, owner_id, amount_micros, state, "
                 "resolved_period, resolved_by")
RECORD_SHARES = text(f"INSERT INTO shares ({SHARE_COLUMNS})\n" + SPLIT_SHARES.text)

# Under the "charity" policy a member who had a budget in force at the end of a month
# without flattrs gives it to charity: min(budget, balance), when that reaches the minimum.
# A member who joined, or set their first budget, after the month owes it nothing.
RECORD_IDLE_CHARGES = text(f"""
INSERT INTO charges (member_id, period, status, flattr_count, budget_micros, balance_micros,
                     charge_micros, fee_micros, net_micros)
SELECT i.member_id, CAST(:period AS VARCHAR(7)), 'idle', 0, i.budget, i.balance, i.charge, 0,
       i.charge
FROM (SELECT m.id AS member_id, b.budget_micros AS budget, a.balance_micros AS balance,
             CASE WHEN b.budget_micros < a.balance_micros
                  THEN b.budget_micros ELSE a.balance_micros END AS charge
      FROM members m
      JOIN accounts a ON a.member_id = m.id AND a.kind = 'giving'
      JOIN ({_BUDGETS_IN_FORCE}) b ON b.member_id = m.id AND b.set_before_end = 1
      WHERE m.created_at < :period_end) i
WHERE i.charge >= :minimum
  AND NOT EXISTS (SELECT 1 FROM charges c WHERE c.member_id = i.member_id AND c.period = :period)
""").bindparams(bindparam("period_end", type_=Timestamp))

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


def share_postings(member_column: str, condition: str):
    """The postings of shares summed per giver or per owner."""
    check(member_column in ("giver_id", "owner_id"), "shares are grouped by giver or owner")
    return text(SHARE_POSTINGS.text.format(member=member_column, shares=condition))
