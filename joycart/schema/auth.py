"""GraphQL fields for accounts: register, login, tokens, signing out, password change, me."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from joycart.models import Role
from joycart.resolvers import auth, limits
from joycart.resolvers.limits import Limit
from joycart.schema.errors import UserError, user_errors
from joycart.schema.types import JCInfo, User, Viewer

# Kept for callers that read the numbers; the limits themselves live in resolvers.limits.
MAX_LOGINS_PER_WINDOW = limits.LOGIN_PER_EMAIL.maximum
MAX_REGISTRATIONS_PER_WINDOW = limits.REGISTER_PER_ADDRESS.maximum


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


@strawberry.type
class LogoutPayload:
    ended_sessions: int = strawberry.field(
        default=0, description="How many signed-in sessions this ended (0 if already ended)."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


def _email_key(email: str) -> str:
    return email.strip().lower()[:180]


async def enforce_limits(info: JCInfo, hits: Sequence[tuple[Limit, str]]) -> None:
    """Count this request against each limit (committed even if the attempt then fails)."""
    if info.context.services.settings.rate_limits == "off":
        return
    async with info.context.transaction() as session:
        await limits.hit(session, hits)


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
        await enforce_limits(
            info,
            [
                (limits.REGISTER_PER_ADDRESS, ctx.client_ip),
                (limits.REGISTER_PER_EMAIL, _email_key(input.email)),
            ],
        )
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
        await enforce_limits(
            info,
            [
                (limits.LOGIN_PER_EMAIL, _email_key(input.email)),
                (limits.LOGIN_PER_ADDRESS, ctx.client_ip),
            ],
        )
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

    @strawberry.mutation(
        description="Sign out the session this refresh token belongs to: the token, every token "
        "refreshed from the same sign-in, and their access tokens stop working at once."
    )
    @user_errors(LogoutPayload)
    async def logout(self, info: JCInfo, refresh_token: str) -> LogoutPayload:
        async with info.context.transaction() as session:
            ended = await auth.logout(session, refresh_token=refresh_token)
        return LogoutPayload(ended_sessions=ended)

    @strawberry.mutation(
        description="Sign out every session of the caller; every refresh and access token "
        "issued so far stops working at once."
    )
    @user_errors(LogoutPayload)
    async def logout_everywhere(self, info: JCInfo) -> LogoutPayload:
        user = await info.context.require_user()
        async with info.context.transaction() as session:
            ended = await auth.logout_everywhere(session, user=user)
        return LogoutPayload(ended_sessions=ended)

    @strawberry.mutation(
        description="Change the password (the current one is required). Every other session "
        "ends at once; the answer carries the tokens of a new one."
    )
    @user_errors(AuthPayload)
    async def change_password(
        self, info: JCInfo, current_password: str, new_password: str
    ) -> AuthPayload:
        ctx = info.context
        user = await ctx.require_user()
        await enforce_limits(info, [(limits.PASSWORD_CHANGE_PER_USER, str(user.id))])
        async with ctx.transaction() as session:
            result = await auth.change_password(
                session,
                user=user,
                current_password=current_password,
                new_password=new_password,
                jwt_secret=ctx.services.settings.jwt_secret or "",
            )
        return AuthPayload.of(result)
