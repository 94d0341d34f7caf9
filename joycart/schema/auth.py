"""GraphQL fields for accounts: register, login, refreshToken, me."""

from __future__ import annotations

import strawberry

from joycart.models import Role
from joycart.resolvers import auth
from joycart.schema.errors import UserError, user_errors
from joycart.schema.types import JCInfo, User, Viewer

MAX_LOGINS_PER_WINDOW = 10
MAX_REGISTRATIONS_PER_WINDOW = 20


@strawberry.input
class RegisterInput:
    email: str
    password: str
    name: str
    role: Role = Role.USER


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.type
class AuthPayload:
    access_token: str | None = None
    refresh_token: str | None = None
    user: User | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: auth.AuthResult) -> AuthPayload:
        return cls(
            access_token=result.access_token,
            refresh_token=result.refresh_token,
            user=User.of(result.user, Viewer.of(result.user)),
        )


async def _limit(info: JCInfo, key: str, limit: int) -> None:
    if info.context.services.settings.rate_limits == "off":
        return
    async with info.context.transaction() as session:  # committed even if the attempt fails
        await auth.hit_rate_limit(session, key=key, limit=limit)


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The signed-in account, or null when anonymous.")
    async def me(self, info: JCInfo) -> User | None:
        user = await info.context.user()
        return User.of(user, Viewer.of(user)) if user is not None else None


@strawberry.type
class AuthMutation:
    @strawberry.mutation
    @user_errors(AuthPayload)
    async def register(self, info: JCInfo, input: RegisterInput) -> AuthPayload:
        ctx = info.context
        await _limit(info, f"register:{ctx.client_ip}", MAX_REGISTRATIONS_PER_WINDOW)
        async with ctx.transaction() as session:
            result = await auth.register(
                session,
                email=input.email,
                password=input.password,
                name=input.name,
                role=input.role,
                jwt_secret=ctx.services.settings.jwt_secret or "",
            )
        return AuthPayload.of(result)

    @strawberry.mutation
    @user_errors(AuthPayload)
    async def login(self, info: JCInfo, input: LoginInput) -> AuthPayload:
        ctx = info.context
        await _limit(info, f"login:{input.email.strip().lower()[:200]}", MAX_LOGINS_PER_WINDOW)
        async with ctx.transaction() as session:
            result = await auth.login(
                session,
                email=input.email,
                password=input.password,
                jwt_secret=ctx.services.settings.jwt_secret or "",
            )
        return AuthPayload.of(result)

    @strawberry.mutation(description="Exchange a refresh token for new tokens; each works once.")
    @user_errors(AuthPayload)
    async def refresh_token(self, info: JCInfo, refresh_token: str) -> AuthPayload:
        ctx = info.context
        async with ctx.transaction() as session:
            try:
                result = await auth.refresh(
                    session,
                    refresh_token=refresh_token,
                    jwt_secret=ctx.services.settings.jwt_secret or "",
                )
            except auth.FamilyRevoked as revoked:
                revoked_error = revoked
            else:
                return AuthPayload.of(result)
        raise revoked_error.error
