"""Apache Kafka beside the dev broker: the Maven recipe (pom.xml), the single-node KRaft
properties template, and the code that fetches, formats, runs and probes it."""
