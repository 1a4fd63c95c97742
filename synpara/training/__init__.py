"""Training code for the event head (``synpara.head``): mixtures, features, fitting, scoring."""
