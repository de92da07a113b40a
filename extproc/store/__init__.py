"""Counters in Redis: key layout, Lua scripts and the quota store that runs them."""
