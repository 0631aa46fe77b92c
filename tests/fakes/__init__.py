"""Fakes of outside systems that speak the real protocols over real sockets."""
