"""The webhook receiver's logic: settings, credentials, the claim-check queue and the request flow.

``service.Receiver`` is what the Lambda entry point (functions/webhook_receiver/app.py) calls. Keep this
module empty of imports: the receiver's cold start imports this package.
"""
