"""Who is asking: bearer tokens for the requests API (`Authorization: Bearer <token>`).

Tokens come from the settings (`APERTURE_API_TOKENS`, JSON: token -> {"user": ..., "role": "user" |
"operator"}), compared in constant time. A user sees and acts on their own requests only; an operator sees
all. Without configured tokens a development token is accepted (`DEV_TOKEN`, an operator), except in
production mode, where nothing is accepted until tokens are configured. Some endpoints (campaigns, the run
ledger) are for operators only: `operator_only` makes their dependency.
"""

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Header
from pydantic import BaseModel, Field


class Role(StrEnum):
    USER = "user"
    OPERATOR = "operator"


class ApiIdentity(BaseModel):
    user: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@+-]+$")
    role: Role = Role.USER


DEV_TOKEN = "aperture-dev-token"
DEV_IDENTITY = ApiIdentity(user="dev", role=Role.OPERATOR)


@dataclass(frozen=True)
class Caller:
    user: str
    role: Role

    @property
    def operator(self) -> bool:
        return self.role is Role.OPERATOR

    def may_see(self, owner: str) -> bool:
        return self.operator or owner == self.user


class Unauthenticated(Exception):
    """No token, or one that is not known: a 401 naming what to send."""


class Forbidden(Exception):
    """A known caller who may not do this: a 403 naming the Authorization header and whom to ask."""


def caller_of(authorization: str | None, tokens: dict[str, ApiIdentity], production: bool) -> Caller:
    """The caller an Authorization header names; Unauthenticated when it names none."""
    if not tokens and production:
        raise Unauthenticated("no API tokens are configured (APERTURE_API_TOKENS): ask an operator to set them")
    known = tokens or {DEV_TOKEN: DEV_IDENTITY}
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send `Authorization: Bearer <token>`; ask an operator for a token")
    presented = token.strip().encode()
    for candidate, identity in known.items():
        if hmac.compare_digest(candidate.encode(), presented):
            return Caller(identity.user, identity.role)
    raise Unauthenticated("the token is not known (expired or mistyped); ask an operator for a valid one")


def operator_only(
    tokens: dict[str, ApiIdentity], production: bool, whose_business: str
) -> Callable[[str | None], Caller]:
    """A FastAPI dependency giving the caller, who must be an operator; a user is refused with
    `whose_business` ("campaigns are run by operators") as the reason."""

    def operator(authorization: Annotated[str | None, Header(description="Bearer <token>")] = None) -> Caller:
        who = caller_of(authorization, tokens, production)
        if not who.operator:
            raise Forbidden(f"{whose_business}, and {who.user}'s token is a user's: ask an operator")
        return who

    return operator
