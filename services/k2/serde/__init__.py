"""K2's serialization: the Confluent wire format and the registry-backed Avro serializer."""
