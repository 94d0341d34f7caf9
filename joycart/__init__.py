"""JoyCart: a GraphQL commerce backend where checkout never oversells and refunds happen once."""

__version__ = "0.1.0"
