"""The calendar and sync model: plain data and pure functions, no Azure, no HTTP, no I/O."""
