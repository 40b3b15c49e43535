"""gregor's client-compatibility suite: real Kafka clients against a real gregor broker."""
