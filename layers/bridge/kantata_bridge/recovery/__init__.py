"""Recovery of deliveries a tracker failed to make (GitHub: list the hook's deliveries, redeliver the failed
ones the bridge never saw), and the state-table items it shares with reconciliation (``state.py``)."""
