"""Training code for the event head (``synpara.detectors.head``): mixtures, features, fitting,
scoring."""
