"""The throwaway CA of the ZBP tests: the simulator's own helper (adapters/portal/sim/devca.py)."""

from adapters.portal.sim.devca import Ca, SigningPair, issue, make_ca, new_key, replace_file

__all__ = ["Ca", "SigningPair", "issue", "make_ca", "new_key", "replace_file"]
