"""The local stack: moto server, the Kantata sandbox, an API Gateway-shaped endpoint and an SQS poller in one
process, for ``kantata-bridge demo`` and ``kantata-bridge serve``.

Not shipped in the Lambda layer. The operator tools (explain, redrive, catalog) live in ``kantata_bridge_cli``.
"""
