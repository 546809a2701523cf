"""`task demo`: the whole platform on real ASX data, from an empty machine to answers.

Steps, one module each: the local stack (`k2stack`), bootstrap, ingest worker processes
(`workers`), the replay, waiting until every record is committed (`progress`), and the report
(`report`). `__main__` wires them.
"""
