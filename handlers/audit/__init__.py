"""The tamper-evident command-chain log (指挥链日志) as pure functions: each entry's content hash, the chain that
links entries, and verification that names the first broken entry.

May import: pingan.schemas only. The store appends and reads the rows; `pingan log verify` prints the verdict.
"""
