"""Built-in evaluation: ``synpara eval <what>`` scores a stage's output against a truth file."""
