"""kantata_bridge: the shared runtime code of the tracker → Kantata OX bridge (shipped as a Lambda layer).

Keep this module empty of imports: every Lambda cold start pays for what it pulls in.
"""

__version__ = "0.1.0"
