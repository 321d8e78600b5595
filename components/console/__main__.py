"""``python -m components.console``: serve the console, or add a user.

    python -m components.console add-user alice --role lead   (asks for the password)
    python -m components.console serve [--host 127.0.0.1] [--port 8800]

Settings come from the environment (components/console/config.py):
TRACKER_STORE_URL, CONSOLE_DB_URL, CONSOLE_USERS_FILE, CONSOLE_USERS,
CONSOLE_SECRET_KEY, CONSOLE_SECURE_COOKIES.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import sys
import threading
from typing import List, Optional

from components.console.config import DEFAULT_PORT, SECRET_ENV, ConfigError, ConsoleConfig
from components.console.users import ROLES, UsersError, add_user, load_users


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password for {args.name}: ")
    if first != getpass.getpass("Again: "):
        raise UsersError("The two passwords differ; nothing was changed.")
    return first


def cmd_add_user(args, config: ConsoleConfig) -> None:
    user = add_user(config.users_file, args.name, args.role, _password(args))
    print(f"{user.name} ({user.role}) can now log in; users file: {config.users_file}")


def cmd_serve(args, config: ConsoleConfig) -> None:
    from waitress import serve  # noqa: PLC0415 - only the server needs it

    from components.console.app import create_app  # noqa: PLC0415

    users = load_users(config.users_file, config.users_env)
    if not users:
        raise UsersError(f"No console user yet. Add a team lead first: python -m "
                         f"components.console add-user NAME --role lead "
                         f"(users file {config.users_file}).")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not config.secure_cookies:
        logging.warning("Serving on %s without CONSOLE_SECURE_COOKIES=1: put the console "
                        "behind HTTPS (deploy/nginx.conf.template) before others use it.",
                        args.host)
    app = create_app(config)
    index = app.extensions["kestrel_console"]["index"]
    threading.Thread(target=index.warm, name="console-index", daemon=True).start()
    print(f"Console on http://{args.host}:{args.port}/ ({len(users)} user(s); tracker store "
          f"{config.store_url.split('@')[-1]}). Ctrl-C stops it.", flush=True)
    if SECRET_ENV not in __import__("os").environ:
        print(f"Note: {SECRET_ENV} is not set, so sessions end when the console restarts.",
              flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components.console",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the console (waitress)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("add-user", help="add a user or set a user's password and role")
    p.add_argument("name")
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin (for scripts)")
    p.set_defaults(func=cmd_add_user)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one sub-command; returns the exit code (0 ok, 1 bad settings or input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        args.func(args, ConsoleConfig.from_env())
    except (ConfigError, UsersError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
