"""Mobile domain: TFLite and Core ML variants, their latency, footprint and per-platform selection."""
