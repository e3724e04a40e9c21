"""Interactive Brokers through ib_async: the broker adapter, history import and live bars."""
