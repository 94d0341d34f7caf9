"""The operations: plain async functions that hold every business rule.

Called alike by GraphQL fields, the webhook route, the worker, the CLI and the tests. They take an
`AsyncSession` (the caller owns the transaction) or, when they must commit before calling
Razorpay or Cloudinary, the session factory.
"""
