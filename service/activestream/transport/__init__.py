"""Message transports: the only place that talks to Kafka (or to an in-memory stand-in for tests)."""
