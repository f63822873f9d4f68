"""Authentication: bearer tokens mapped to users, ServiceAccount identities,
and impersonation headers (Impersonate-User / -Group / -Uid).
"""
import secrets

SA_PREFIX = "system:serviceaccount:"


class User:
    def __init__(self, name, groups=(), uid=""):
        self.name = name
        self.groups = list(groups)
        self.uid = uid

    @property
    def is_admin(self):
        return "system:masters" in self.groups

    def info(self):
        info = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        return info

    def __repr__(self):
        return f"<User {self.name}>"


def service_account_user(namespace, name):
    return User(f"{SA_PREFIX}{namespace}:{name}",
                ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                 "system:authenticated"])


def user_for_name(name, groups=()):
    """The user an impersonated name stands for (SA names get their SA groups)."""
    if name.startswith(SA_PREFIX):
        ns, _, sa = name[len(SA_PREFIX):].partition(":")
        user = service_account_user(ns, sa)
        for g in groups:
            if g not in user.groups:
                user.groups.append(g)
        return user
    groups = list(groups)
    if "system:authenticated" not in groups and name != "system:anonymous":
        groups.append("system:authenticated")
    return User(name, groups)


class Authenticator:
    def __init__(self):
        self.tokens = {}

    def add(self, user, token=None):
        token = token or secrets.token_hex(24)
        self.tokens[token] = user
        return token

    def admin_token(self):
        for token, user in self.tokens.items():
            if user.name == "admin":
                return token
        return self.add(User("admin", ["system:masters", "system:authenticated"]))

    def token_for_service_account(self, namespace, name):
        wanted = f"{SA_PREFIX}{namespace}:{name}"
        for token, user in self.tokens.items():
            if user.name == wanted:
                return token
        return self.add(service_account_user(namespace, name))

    def authenticate(self, authorization_header):
        """Returns the User, or None when the header is missing or the token unknown."""
        if not authorization_header:
            return None
        scheme, _, token = authorization_header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.tokens.get(token.strip())

    def review(self, token):
        return self.tokens.get(token or "")
