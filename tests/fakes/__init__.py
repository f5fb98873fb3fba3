"""Hand-written fakes of the service ports. They enforce the real contracts (etags, one-time takes,
ordering), so the service layer is tested against the same rules the adapters follow."""
