"""Events between processes, domain-free: the envelope every event travels in, the
transactional outbox and its relay to Kafka, and the consumer runner with its inbox."""
