"""The post-office agents' blueprints: scan, verify, pay out, cash-in, drawer, receipts."""
