"""The coordinator: the one writer of MOUS and job state (SCHEMA.md describes it).

planner (the job graph of a run) -> state (the state machine, one transaction per change) -> outbox ->
relay (publishes to RabbitMQ) -> workers -> events (completion events back into state); api serves
people; main wires it together (`aperture-coordinator serve|migrate`).
"""
