"""Stylization back ends: feed-forward networks (:mod:`.feedforward`) with temporal stabilisation
(:mod:`.temporal`), and per-frame optimisation (:mod:`.optim`)."""
