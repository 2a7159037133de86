"""The invariants of the ledger, as queries that return the rows violating them.

`flattr check` runs them; tests run them after every scenario. An empty result is a
proof for the data at hand, not an assumption.
"""

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Invariant:
    name: str
    description: str
    violations: str  # SQL returning one row per violation


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "transactions_balance",
        "every transaction has postings and they sum to zero",
        """SELECT t.key, COALESCE(SUM(p.amount_micros), 0) AS total
           FROM ledger_transactions t LEFT JOIN postings p ON p.transaction_id = t.id
           GROUP BY t.id, t.key
           HAVING COUNT(p.id) = 0 OR SUM(p.amount_micros) <> 0""",
    ),
    Invariant(
        "postings_reference",
        "every posting names an existing account and transaction",
        """SELECT p.id, p.transaction_id, p.account_id
           FROM postings p
           LEFT JOIN accounts a ON a.id = p.account_id
           LEFT JOIN ledger_transactions t ON t.id = p.transaction_id
           WHERE a.id IS NULL OR t.id IS NULL""",
    ),
    Invariant(
        "charges_reference",
        "every charge names an existing member",
        """SELECT c.member_id, c.period FROM charges c
           LEFT JOIN members m ON m.id = c.member_id
           WHERE m.id IS NULL""",
    ),
    Invariant(
        "outbox_reference",
        "every message names an existing member, every delivery its message and its member",
        """SELECT 'message' AS row, o.id, o.member_id FROM outbox o
           LEFT JOIN members m ON m.id = o.member_id
           WHERE m.id IS NULL
           UNION ALL
           SELECT 'delivery', d.id, d.member_id FROM outbox_deliveries d
           LEFT JOIN outbox o ON o.id = d.message_id
           WHERE o.id IS NULL OR o.member_id <> d.member_id""",
    ),
    Invariant(
        "ledger_sums_to_zero",
        "all postings of the ledger sum to zero",
        """SELECT SUM(amount_micros) AS total FROM postings
           HAVING SUM(amount_micros) <> 0""",
    ),
    Invariant(
        "cached_balances",
        "each account's cached balance equals the sum of its postings",
        """SELECT a.id, a.kind, a.member_id, a.balance_micros, COALESCE(s.total, 0) AS posted
           FROM accounts a
           LEFT JOIN (SELECT account_id, SUM(amount_micros) AS total
                      FROM postings GROUP BY account_id) s ON s.account_id = a.id
           WHERE a.balance_micros <> COALESCE(s.total, 0)""",
    ),
    Invariant(
        "no_overdrawn_account",
        "no giving, revenue or pool balance is below zero",
        # A debt account is none of these: it is the part of `external` a member owes.
        """SELECT id, kind, member_id, balance_micros FROM accounts
           WHERE kind NOT IN ('external', 'debt') AND balance_micros < 0""",
    ),
    Invariant(
        "debt_not_positive",
        "no member's debt account is above zero",
        """SELECT id, member_id, balance_micros FROM accounts
           WHERE kind = 'debt' AND balance_micros > 0""",
    ),
    Invariant(
        "debt_moves_recorded",
        "a debt moves only by a reversal of the member's funding, or a funding, a reinstated "
        "dispute or a transfer of their revenue that repays it",
        """SELECT t.key, t.kind, a.member_id, p.amount_micros
           FROM postings p
           JOIN accounts a ON a.id = p.account_id AND a.kind = 'debt'
           JOIN ledger_transactions t ON t.id = p.transaction_id
           LEFT JOIN fundings f ON f.transaction_id = t.id AND f.member_id = a.member_id
           LEFT JOIN funding_reversals r ON r.transaction_id = t.id
                                        AND r.member_id = a.member_id
           LEFT JOIN funding_reversals b ON b.reinstated_transaction_id = t.id
                                        AND b.member_id = a.member_id
           WHERE ((f.id IS NULL AND b.id IS NULL
                   AND (t.kind <> 'transfer' OR t.member_id IS NULL
                        OR t.member_id <> a.member_id))
                  OR p.amount_micros < 0)
             AND (r.id IS NULL OR p.amount_micros > 0)""",
    ),
    Invariant(
        "conservation",
        "for every settled period, charges = fees + shares (to revenue or held)",
        """SELECT c.period, SUM(c.charge_micros) AS charged, SUM(c.fee_micros) AS fees,
                  COALESCE(MAX(s.total), 0) AS shared
           FROM charges c
           JOIN settlements st ON st.period = c.period AND st.status = 'settled'
           LEFT JOIN (SELECT period, SUM(amount_micros) AS total FROM shares GROUP BY period) s
                  ON s.period = c.period
           WHERE c.status = 'funded'
           GROUP BY c.period
           HAVING SUM(c.charge_micros) <> SUM(c.fee_micros) + COALESCE(MAX(s.total), 0)""",
    ),
    Invariant(
        "split_exact",
        "each funded charge is split exactly over its flattrs, one share per flattr",
        """SELECT c.member_id, c.period, c.net_micros, c.flattr_count,
                  COALESCE(s.total, 0) AS shared, COALESCE(s.n, 0) AS shares
           FROM charges c
           JOIN settlements st ON st.period = c.period AND st.stage >= 2
           LEFT JOIN (SELECT giver_id, period, SUM(amount_micros) AS total, COUNT(*) AS n
                      FROM shares GROUP BY giver_id, period) s
                  ON s.giver_id = c.member_id AND s.period = c.period
           WHERE c.status = 'funded'
             AND (COALESCE(s.total, 0) <> c.net_micros OR COALESCE(s.n, 0) <> c.flattr_count)""",
    ),
    Invariant(
        "charges_posted",
        "each charge of a settled period left the giver's account exactly once",
        # One pass over each side, summed per giver: no join between the two large sets,
        # and a posting to a giving account without a charge is caught too.
        """SELECT u.member_id, u.period, SUM(u.charged) AS charged, SUM(u.posted) AS posted
           FROM (SELECT c.member_id, c.period, c.charge_micros AS charged, 0 AS posted
                 FROM charges c
                 JOIN settlements st ON st.period = c.period AND st.status = 'settled'
                 UNION ALL
                 SELECT a.member_id, t.period, 0, -p.amount_micros
                 FROM ledger_transactions t
                 JOIN settlements st ON st.period = t.period AND st.status = 'settled'
                 JOIN postings p ON p.transaction_id = t.id
                 JOIN accounts a ON a.id = p.account_id AND a.kind = 'giving'
                 WHERE t.kind IN ('settlement.charge', 'settlement.idle')) u
           GROUP BY u.member_id, u.period
           HAVING SUM(u.charged) <> SUM(u.posted)""",
    ),
    Invariant(
        "fees_match_charges",
        "the fees account got each period's fees, and a charge moved money nowhere else",
        # A charge takes from givers' giving accounts, gives the fees account the fees and
        # the pool (charity, for idle months) the rest; written with the charges, in stage 2.
        """SELECT u.period, SUM(u.fees) AS fees, SUM(u.posted) AS posted,
                  SUM(u.strays) AS stray_postings
           FROM (SELECT c.period, c.fee_micros AS fees, 0 AS posted, 0 AS strays
                 FROM charges c
                 UNION ALL
                 SELECT t.period, 0,
                        CASE WHEN a.kind = 'fees' THEN p.amount_micros ELSE 0 END,
                        CASE WHEN a.kind IN ('giving', 'fees')
                               OR (a.kind = 'unclaimed' AND t.kind = 'settlement.charge')
                               OR (a.kind = 'charity' AND t.kind = 'settlement.idle')
                             THEN 0 ELSE 1 END
                 FROM ledger_transactions t
                 JOIN postings p ON p.transaction_id = t.id
                 JOIN accounts a ON a.id = p.account_id
                 WHERE t.kind IN ('settlement.charge', 'settlement.idle')) u
           GROUP BY u.period
           HAVING SUM(u.fees) <> SUM(u.posted) OR SUM(u.strays) > 0""",
    ),
    Invariant(
        "revenue_matches_shares",
        "each owner's revenue from shares is the sum of their paid and released shares",
        # Paid shares reach revenue in stage 3 of their period's settlement; a release (by a
        # settlement, or by a claim or a linked identity in between) changes the shares and
        # posts them in one transaction. Per owner, one pass over each side.
        """SELECT u.member_id, SUM(u.owed) AS owed, SUM(u.posted) AS posted
           FROM (SELECT s.owner_id AS member_id, s.amount_micros AS owed, 0 AS posted
                 FROM shares s
                 WHERE s.state = 'released'
                    OR (s.state = 'paid'
                        AND s.period IN (SELECT period FROM settlements WHERE stage >= 3))
                 UNION ALL
                 SELECT a.member_id, 0, p.amount_micros
                 FROM ledger_transactions t
                 JOIN postings p ON p.transaction_id = t.id
                 JOIN accounts a ON a.id = p.account_id AND a.kind = 'revenue'
                 WHERE t.kind IN ('settlement.revenue', 'settlement.release', 'release')) u
           GROUP BY u.member_id
           HAVING SUM(u.owed) <> SUM(u.posted)""",
    ),
    Invariant(
        "returns_match_shares",
        "each giver got back exactly their returned shares",
        """SELECT u.member_id, SUM(u.returned) AS returned, SUM(u.posted) AS posted
           FROM (SELECT s.giver_id AS member_id, s.amount_micros AS returned, 0 AS posted
                 FROM shares s WHERE s.state = 'returned'
                 UNION ALL
                 SELECT a.member_id, 0, p.amount_micros
                 FROM ledger_transactions t
                 JOIN postings p ON p.transaction_id = t.id
                 JOIN accounts a ON a.id = p.account_id AND a.kind = 'giving'
                 WHERE t.kind = 'settlement.return') u
           GROUP BY u.member_id
           HAVING SUM(u.returned) <> SUM(u.posted)""",
    ),
    Invariant(
        "external_matches_records",
        "money crossed `external` only as a recorded funding, reversal, reinstated dispute "
        "or paid payout",
        # Per transaction: what it moved through `external`; what its funding (or a won
        # dispute's reinstatement) says came in and reached that member's giving account
        # (or repaid their debt); what its reversal says was taken back from that member's
        # giving account and debt; what its payout, marked paid, says left. A funding or
        # reversal without its transaction, or a paid payout without one, is caught too; so
        # is a transaction that is two of them.
        # The backslash keeps `text()` from taking `:paid` for a parameter.
        """WITH records AS (
               SELECT transaction_id, member_id, amount_micros AS funded, 0 AS reversed
               FROM fundings
               UNION ALL
               SELECT reinstated_transaction_id, member_id, amount_micros, 0
               FROM funding_reversals WHERE reinstated_transaction_id IS NOT NULL
               UNION ALL
               SELECT transaction_id, member_id, 0, amount_micros FROM funding_reversals)
           SELECT u.transaction_id, SUM(u.external) AS external_micros,
                  SUM(u.funded) AS funded_micros, SUM(u.received) AS received_micros,
                  SUM(u.reversed) AS reversed_micros, SUM(u.paid_out) AS paid_out_micros,
                  SUM(u.records) AS records
           FROM (SELECT p.transaction_id, p.amount_micros AS external, 0 AS funded,
                        0 AS received, 0 AS reversed, 0 AS paid_out, 0 AS records
                 FROM postings p
                 JOIN accounts x ON x.id = p.account_id AND x.kind = 'external'
                                AND x.member_id IS NULL
                 UNION ALL
                 SELECT r.transaction_id, 0, r.funded, 0, r.reversed, 0, 1 FROM records r
                 UNION ALL
                 SELECT r.transaction_id, 0, 0, p.amount_micros, 0, 0, 0
                 FROM records r
                 JOIN postings p ON p.transaction_id = r.transaction_id
                 JOIN accounts a ON a.id = p.account_id AND a.kind IN ('giving', 'debt')
                                AND a.member_id = r.member_id
                 UNION ALL
                 SELECT t.id, 0, 0, 0, 0, o.amount_micros, 1
                 FROM payouts o
                 LEFT JOIN ledger_transactions t
                        ON t.key = 'payout:' || CAST(o.id AS VARCHAR(20)) || '\\:paid'
                       AND t.kind = 'payout.paid'
                 WHERE o.status = 'paid') u
           GROUP BY u.transaction_id
           HAVING SUM(u.external) <> SUM(u.paid_out) + SUM(u.reversed) - SUM(u.funded)
               OR SUM(u.received) <> SUM(u.funded) - SUM(u.reversed)
               OR SUM(u.records) > 1""",
    ),
    Invariant(
        "external_total",
        "`external` moved exactly the confirmed fundings, less reversals (but for disputes "
        "won) and paid payouts",
        """SELECT -x.balance_micros AS inside, f.total AS funded, r.total AS reversed,
                  o.total AS paid_out
           FROM accounts x,
                (SELECT COALESCE(SUM(amount_micros), 0) AS total FROM fundings) f,
                (SELECT COALESCE(SUM(amount_micros), 0) AS total FROM funding_reversals
                 WHERE reinstated_transaction_id IS NULL) r,
                (SELECT COALESCE(SUM(amount_micros), 0) AS total FROM payouts
                 WHERE status = 'paid') o
           WHERE x.kind = 'external' AND x.member_id IS NULL
             AND -x.balance_micros <> f.total - r.total - o.total""",
    ),
    Invariant(
        "reversals_within_fundings",
        "a funding is never taken back for more than it brought in (disputes won brought "
        "theirs back), nor from another member",
        """SELECT f.id, f.member_id, f.amount_micros, SUM(
                      CASE WHEN r.reinstated_transaction_id IS NULL THEN r.amount_micros
                           ELSE 0 END) AS reversed
           FROM fundings f JOIN funding_reversals r ON r.funding_id = f.id
           GROUP BY f.id, f.member_id, f.amount_micros
           HAVING SUM(CASE WHEN r.reinstated_transaction_id IS NULL THEN r.amount_micros
                           ELSE 0 END) > f.amount_micros
               OR MIN(r.member_id) <> f.member_id OR MAX(r.member_id) <> f.member_id""",
    ),
    Invariant(
        "reversal_debts_posted",
        "each reversal took its debt part from the member's debt account, the rest from giving",
        """SELECT r.id, r.amount_micros, r.debt_micros, COALESCE(SUM(
                      CASE WHEN a.kind = 'debt' THEN -p.amount_micros ELSE 0 END), 0) AS posted
           FROM funding_reversals r
           LEFT JOIN postings p ON p.transaction_id = r.transaction_id
           LEFT JOIN accounts a ON a.id = p.account_id AND a.member_id = r.member_id
           GROUP BY r.id, r.amount_micros, r.debt_micros
           HAVING COALESCE(SUM(CASE WHEN a.kind = 'debt' THEN -p.amount_micros ELSE 0 END), 0)
                  <> r.debt_micros""",
    ),
    Invariant(
        "checkouts_funded",
        "each paid card checkout is one funding of its member and amount, and back",
        """SELECT 'checkout' AS side, c.session_id AS id FROM stripe_checkouts c
           LEFT JOIN fundings f ON f.id = c.funding_id
           WHERE c.status = 'paid'
             AND (f.id IS NULL OR f.member_id <> c.member_id
                  OR f.amount_micros <> c.amount_micros OR f.source <> 'stripe')
           UNION ALL
           SELECT 'funding', CAST(f.id AS VARCHAR(20)) FROM fundings f
           LEFT JOIN stripe_checkouts c ON c.funding_id = f.id
           WHERE f.source = 'stripe' AND c.session_id IS NULL""",
    ),
    Invariant(
        "pool_holds_held_shares",
        "outside a running settlement, the unclaimed pool holds exactly the held shares",
        """SELECT a.balance_micros, h.total
           FROM accounts a,
                (SELECT COALESCE(SUM(amount_micros), 0) AS total FROM shares
                 WHERE state = 'held') h
           WHERE a.kind = 'unclaimed' AND a.member_id IS NULL
             AND NOT EXISTS (SELECT 1 FROM settlements WHERE status = 'settling')
             AND a.balance_micros <> h.total""",
    ),
    Invariant(
        "payouts_pending",
        "the payouts accounts hold exactly the unresolved payouts: requested ones in "
        "`payouts`, those sent to the bank in `payouts_sent`",
        """SELECT a.kind, a.balance_micros, COALESCE(r.total, 0) AS total
           FROM accounts a
           LEFT JOIN (SELECT CASE WHEN status = 'requested' THEN 'payouts'
                                  ELSE 'payouts_sent' END AS kind,
                             SUM(amount_micros) AS total
                      FROM payouts WHERE status IN ('requested', 'sent')
                      GROUP BY CASE WHEN status = 'requested' THEN 'payouts'
                                    ELSE 'payouts_sent' END) r ON r.kind = a.kind
           WHERE a.kind IN ('payouts', 'payouts_sent') AND a.member_id IS NULL
             AND a.balance_micros <> COALESCE(r.total, 0)""",
    ),
    Invariant(
        "no_self_share",
        "no share was paid or released to its own giver",
        """SELECT giver_id, flattr_id FROM shares
           WHERE owner_id = giver_id AND state IN ('paid', 'released')""",
    ),
)


@dataclass(frozen=True)
class Finding:
    invariant: Invariant
    violations: list[dict]

    @property
    def holds(self) -> bool:
        return not self.violations


async def run_checks(conn: AsyncConnection, limit: int = 20) -> list[Finding]:
    findings = []
    for invariant in INVARIANTS:
        rows = await conn.execute(text(f"{invariant.violations} LIMIT {int(limit)}"))
        findings.append(Finding(invariant, [dict(r) for r in rows.mappings()]))
    return findings
