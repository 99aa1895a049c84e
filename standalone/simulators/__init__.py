"""Simulated devices that speak the real protocols: a fleet to try the product without one.

``fleet-metrics demo`` points the runner at them, ``fleet-metrics simulate`` runs them alone
for Home Assistant. Each module imitates one kind of device as its firmware behaves on the
wire (topics, payload shapes, retained flags, HTTP endpoints); their tests read them with the
real core sources.
"""
