"""The citizen's wallet pages: balance, history with running balance, receipts, account QR."""
