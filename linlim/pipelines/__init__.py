"""End-to-end jobs behind the ``linlim`` command: a synthetic scenario, the joint
foreground/beam/gain model, and the demo that fits it and reveals the 21 cm signal."""
