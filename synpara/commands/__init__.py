"""Commands that are not stages (each reads or writes a whole corpus): one module each, exposing a
click ``command``; ``synpara.cli`` lists them in ``COMMANDS`` and imports one only when it runs."""
