"""Money out of a wallet: withdrawal and payment codes, billers, and market-stall merchants."""
