//! The default partitioner: murmur2 over the serialized key, as in Kafka's Java client.
