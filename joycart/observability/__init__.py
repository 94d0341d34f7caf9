"""What an operator sees: structured logs (`logs`), Prometheus metrics (`metrics`, and the
database-backed gauges in `database`), and the HTTP edge that ties a request id and a route
timing to every request (`http`)."""
