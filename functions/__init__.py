"""One blueprint per concern. Each trigger parses its binding into a typed command, calls one
handler from `shared.service`, and maps the outcome to a response."""
