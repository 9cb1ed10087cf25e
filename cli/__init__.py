"""The `pingan` command (typer). Thin: each verb parses its arguments, calls one function beneath (handlers, store,
streams or a core service), and prints."""
