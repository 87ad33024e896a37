"""Citizens: registration, identity (KYC tiers), sign-in credentials and their wallets."""
