"""Real-time order updates: GraphQL subscriptions over WebSocket, fed by PostgreSQL NOTIFY.

    writer (API, webhook, worker, CLI)             every API process
    ─ states.move / states.record                  ┌──────────────────────────────────────┐
      INSERT order_events ─ trigger ─ pg_notify ──▶│ listener.py  one LISTEN connection   │
      (delivered at COMMIT, ids only)              │ hub.py       routes ids to watches   │
                                                   │ socket.py    graphql-transport-ws:   │
                                                   │              auth, limits, pings     │
                                                   └──────────────┬───────────────────────┘
                                                                  ▼
                                     schema/subscriptions.py: wake up, read the current state
                                     with the viewer's rule, send it (bursts coalesced)

The notification carries no state: a subscriber always reads what is committed, through the same
function the `order(id)` query uses, so the privacy rule applies unchanged. `notices`, `listener`,
`hub`, `limits` and `connection` sit beside `resolvers/` (the hub asks `resolvers.updates` who
sells what); `socket` is an edge like `app.py` and may import `schema/`.
"""
