"""Settlement of a period: set-based SQL run as guarded, resumable stages."""

from core.settlement.run import STAGES, SettlementResult, settle_period, settlement_status

__all__ = ["STAGES", "SettlementResult", "settle_period", "settlement_status"]
