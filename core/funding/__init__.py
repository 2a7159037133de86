"""Money in and back out: fundings, reversals (refunds, disputes) and the debts they leave.

Each way to pay in is a module of its own behind `source.FundingSource`: `manual` (an
admin's credit) and `stripe` (Stripe Checkout, confirmed by signed webhooks). Whatever the
source, money in is `credit` and money taken back is `reverse`: one balanced ledger
transaction each, with an idempotency key, named by its `fundings` or `funding_reversals`
row (`flattr check` proves both).
"""

from core.funding.debt import owed_by, refuse_if_in_debt
from core.funding.history import funding_history
from core.funding.money_in import FUNDING_SOURCES, credit, transfer_revenue_to_giving
from core.funding.reversals import Reversal, reverse, reversed_so_far

__all__ = ["FUNDING_SOURCES", "Reversal", "credit", "funding_history", "owed_by",
           "refuse_if_in_debt", "reverse", "reversed_so_far", "transfer_revenue_to_giving"]
