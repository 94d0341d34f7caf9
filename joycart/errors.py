"""Expected failures, each carrying the `ErrorCode` a client sees.

    JoyCartError (code, message, field)
    ├── InvalidInput            INVALID_INPUT
    ├── Unauthenticated         UNAUTHENTICATED
    ├── Forbidden               FORBIDDEN
    ├── NotFound                NOT_FOUND
    ├── EmailTaken              EMAIL_TAKEN
    ├── InvalidCredentials      INVALID_CREDENTIALS
    ├── OutOfStock              OUT_OF_STOCK
    ├── CartEmpty               CART_EMPTY
    ├── IdempotencyKeyReused    IDEMPOTENCY_KEY_REUSED
    ├── InvalidState            INVALID_STATE
    ├── GatewayUnavailable      PAYMENT_GATEWAY_UNAVAILABLE
    ├── RateLimited             RATE_LIMITED
    ├── ImageStoreUnavailable   IMAGE_STORE_UNAVAILABLE (nothing was attached; retry)
    └── Conflict                CONFLICT (a concurrent change won; retrying is safe)

Operations raise these; the GraphQL edge turns them into `UserError`s in one place
(`schema/errors.py`). Anything else is a bug and is masked with a request id.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    INVALID_INPUT = "INVALID_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    CART_EMPTY = "CART_EMPTY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    INVALID_STATE = "INVALID_STATE"
    PAYMENT_GATEWAY_UNAVAILABLE = "PAYMENT_GATEWAY_UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    CONFLICT = "CONFLICT"
    IMAGE_STORE_UNAVAILABLE = "IMAGE_STORE_UNAVAILABLE"


class JoyCartError(Exception):
    code: ErrorCode = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(JoyCartError):
    code = ErrorCode.INVALID_INPUT


class Unauthenticated(JoyCartError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, message: str = "Sign in to do this.", *, field: str | None = None) -> None:
        super().__init__(message, field=field)


class Forbidden(JoyCartError):
    code = ErrorCode.FORBIDDEN


class NotFound(JoyCartError):
    code = ErrorCode.NOT_FOUND


class EmailTaken(JoyCartError):
    code = ErrorCode.EMAIL_TAKEN


class InvalidCredentials(JoyCartError):
    code = ErrorCode.INVALID_CREDENTIALS


class OutOfStock(JoyCartError):
    code = ErrorCode.OUT_OF_STOCK


class CartEmpty(JoyCartError):
    code = ErrorCode.CART_EMPTY


class IdempotencyKeyReused(JoyCartError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class InvalidState(JoyCartError):
    code = ErrorCode.INVALID_STATE


class GatewayUnavailable(JoyCartError):
    code = ErrorCode.PAYMENT_GATEWAY_UNAVAILABLE


class RateLimited(JoyCartError):
    code = ErrorCode.RATE_LIMITED


class ImageStoreUnavailable(JoyCartError):
    code = ErrorCode.IMAGE_STORE_UNAVAILABLE


class Conflict(JoyCartError):
    code = ErrorCode.CONFLICT
