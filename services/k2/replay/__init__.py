"""Replay: read market data files, normalise them to K2's contracts and publish them to Kafka.

The data flow, one module per step: `asx_rows` parses one source line, `asx` walks the ASX
files and gives every record its deterministic identity, `bad_rows` collects what could not
be parsed, `pacing` holds the replay clock, `producer` publishes through the registry
serializers.
"""
