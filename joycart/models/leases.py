"""Call leases: who is making one external call right now (pooler-safe, no session state)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from joycart.models.base import Base


class CallLease(Base):
    __tablename__ = "call_leases"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    token: Mapped[uuid.UUID] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
