"""Developer and operator tools around the bridge: local stack, demo, redrive, explain, catalog sync CLI.

Not shipped in the Lambda layer.
"""
