"""Dev-only simulators of Razorpay and Cloudinary: used by `serve` in development and by tests.

Production code paths never import them; `runtime` imports them only when no credentials are set.
"""
