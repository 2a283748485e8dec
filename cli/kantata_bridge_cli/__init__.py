"""The operator CLI, ``kantata-bridge``: explain, redrive and catalog for a deployed stack (or the local one).

``demo`` and ``serve`` are subcommands of the same command but live with the local stack
(``local/kantata_bridge_dev``). Not shipped in the Lambda layer.
"""
