"""How fast to ask: the request budget, the sliding window and the one retry loop."""
