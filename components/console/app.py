"""The console's web application (Flask, server-rendered Jinja2 pages).

Security, all from well-kept libraries: Flask-Login sessions (signed cookie,
HttpOnly, SameSite=Lax, Secure behind HTTPS), Flask-WTF CSRF tokens on every
POST, Argon2 password hashes (``users``), Jinja2 autoescaping of every value
(a customer's ``<script>`` is shown as text). Every route but the login page
needs a session; what a role may do is ``users.PERMISSIONS``.
"""
from __future__ import annotations

import functools
import json
import tempfile
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlsplit

from flask import (
    Flask, Response, abort, flash, redirect, render_template, request, send_file, url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from components.console.config import ConsoleConfig, loop_defaults
from components.console.db import CORRECTED, VERDICTS, ConsoleDB, ReviewConflictError
from components.console.index import RATING_FILTERS, ConversationIndex, Filters, transcript
from components.console.jobs import KINDS, JobBusyError, JobRunner, log_tail
from components.console.users import PERMISSIONS, User, load_users, verify
from components.feedback.store import StoreError
from shared_names import HELPFUL, NOT_HELPFUL

REPORT_PLOTS = ("metrics.png", "rating_trend.png")  # what evaluate writes (evaluate.py)
SESSION_HOURS = 8


class SessionUser(UserMixin):
    """The logged-in user as Flask-Login sees it."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.name
        self.role = user.role

    def can(self, permission: str) -> bool:
        return self.user.can(permission)


def _when(ts: Optional[float]) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _day_arg(name: str) -> Optional[date]:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        flash(f"'{value}' is not a date; use YYYY-MM-DD. The {name} filter was ignored.")
        return None


def _local(target: Optional[str], default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc:
        return target
    return default


def create_app(config: ConsoleConfig, db: Optional[ConsoleDB] = None) -> Flask:
    """The console for ``config``; ``db`` defaults to ``ConsoleDB(config.db_url)``.

    Raises:
        sqlalchemy.exc.OperationalError: if the console's own database is unreachable.
    """
    from components.feedback.review import DEFAULT_KNOWLEDGE, knowledge_slugs  # noqa: PLC0415
    from components.feedback.versions import GeneratorVersions  # noqa: PLC0415

    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=config.secret_key, SESSION_COOKIE_NAME="kestrel_console",
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        PERMANENT_SESSION_LIFETIME=SESSION_HOURS * 3600, MAX_CONTENT_LENGTH=1 << 20,
        WTF_CSRF_TIME_LIMIT=None)  # the token lives as long as the session
    CSRFProtect(app)
    db = db or ConsoleDB(config.db_url)
    index = ConversationIndex(config.store_url)
    runner = JobRunner(config, db)
    dataset_dir = config.path(loop_defaults("dataset")["out"])
    report_dir = config.path(loop_defaults("evaluate")["out"])
    versions = GeneratorVersions(config.path(loop_defaults("status")["versions"]))
    knowledge = config.path(DEFAULT_KNOWLEDGE)
    analytics_cache: Dict[str, Any] = {}
    analytics_lock = threading.Lock()
    app.extensions["kestrel_console"] = {"db": db, "index": index, "runner": runner,
                                         "config": config}
    app.jinja_env.filters["when"] = _when

    logins = LoginManager(app)
    logins.login_view = "login"
    logins.login_message = "Log in to use the console."
    logins.session_protection = "strong"

    def users() -> Dict[str, User]:
        return load_users(config.users_file, config.users_env)

    @logins.user_loader
    def load(name: str) -> Optional[SessionUser]:
        user = users().get(name)
        return SessionUser(user) if user else None

    def audit(action: str, target: str = "", detail: str = "") -> None:
        db.log(current_user.id, current_user.role, action, target, detail)

    def requires(permission: str) -> Callable:
        if permission not in PERMISSIONS:
            raise KeyError(permission)

        def wrap(view: Callable) -> Callable:
            @functools.wraps(view)
            def guarded(*args, **kwargs):
                if not current_user.is_authenticated:
                    return logins.unauthorized()
                if not current_user.can(permission):
                    return render_template(
                        "error.html", title="Not allowed",
                        message=f"Your role ({current_user.role}) may not {permission}; "
                                f"ask a team lead."), 403
                return view(*args, **kwargs)
            return guarded
        return wrap

    def slugs() -> List[str]:
        return knowledge_slugs(knowledge) if knowledge.is_dir() else []

    @app.context_processor
    def globals_() -> Dict[str, Any]:
        return {"user": current_user, "kinds": KINDS}

    @app.errorhandler(StoreError)
    def store_down(error: StoreError):
        return render_template("error.html", title="The tracker store cannot be read",
                               message=str(error)), 503

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        return render_template("error.html", title="The form could not be accepted",
                               message=f"{error.description} Reload the page and try again."), 400

    @app.errorhandler(404)
    def not_found(error):
        return render_template("error.html", title="Not found",
                               message=getattr(error, "description", "")), 404

    # --- login -------------------------------------------------------------------
    @app.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "POST":
            name = request.form.get("name", "").strip()
            user = users().get(name)
            if user is not None and verify(user, request.form.get("password", "")):
                login_user(SessionUser(user))
                db.log(user.name, user.role, "login")
                return redirect(_local(request.args.get("next"), url_for("conversations")))
            flash("Unknown user or wrong password.")
            return render_template("login.html"), 401
        return render_template("login.html")

    @app.post("/logout")
    @requires("read")
    def logout():
        logout_user()
        return redirect(url_for("login"))

    # --- conversations -------------------------------------------------------------
    @app.get("/")
    @requires("read")
    def home():
        return redirect(url_for("conversations"))

    @app.get("/conversations")
    @requires("read")
    def conversations():
        rating = request.args.get("rating", "")
        filters = Filters(generated=bool(request.args.get("generated")),
                          rating=rating if rating in RATING_FILTERS else "",
                          fell_back=bool(request.args.get("fell_back")),
                          handed_off=bool(request.args.get("handed_off")),
                          since=_day_arg("since"), until=_day_arg("until"),
                          text=request.args.get("q", "").strip())
        index.refresh()
        found = index.conversations(filters)
        page = max(1, request.args.get("page", 1, type=int) or 1)
        size = config.page_size
        args = {k: v for k, v in request.args.items() if k != "page"}
        return render_template("conversations.html", rows=found[(page - 1) * size: page * size],
                               total=len(found), page=page, pages=max(1, -(-len(found) // size)),
                               filters=filters, args=args, ratings=RATING_FILTERS,
                               warnings=index.warnings)

    def conversation_page(sender_id: str, reveal: bool):
        events, warnings = index.events(sender_id)
        if not events:
            abort(404, description=f"No conversation '{sender_id}' in the tracker store.")
        index.refresh()
        summary = index.summary(sender_id)
        replies = {r.reply_id: r for r in (summary.replies if summary else [])}
        reviews = db.reviews()
        return render_template("conversation.html", sender_id=sender_id,
                               rows=transcript(events, reveal=reveal), reveal=reveal,
                               replies=replies,
                               reviews=reviews, slugs=slugs(), warnings=warnings)

    @app.get("/conversations/<path:sender_id>")
    @requires("read")
    def conversation(sender_id: str):
        return conversation_page(sender_id, reveal=False)

    @app.post("/conversations/<path:sender_id>/reveal")
    @requires("reveal")
    def reveal(sender_id: str):
        audit("reveal", sender_id)
        return conversation_page(sender_id, reveal=True)

    # --- review ----------------------------------------------------------------------
    @app.get("/review")
    @requires("read")
    def review_queue():
        index.refresh()
        reviewed = db.reviews()
        queue = [r for r in index.replies() if r.reply_id not in reviewed
                 and r.rating != HELPFUL]
        queue.sort(key=lambda r: (r.rating != NOT_HELPFUL, -r.timestamp))
        page = max(1, request.args.get("page", 1, type=int) or 1)
        size = config.page_size
        return render_template("review.html", items=queue[(page - 1) * size: page * size],
                               total=len(queue), page=page, args={},
                               pages=max(1, -(-len(queue) // size)), slugs=slugs())

    @app.post("/review/<reply_id>")
    @requires("review")
    def save_review(reply_id: str):
        back = _local(request.form.get("next"), url_for("review_queue"))
        verdict = request.form.get("verdict", "")
        text = request.form.get("corrected_reply", "")
        article = request.form.get("article", "").strip()
        seen = request.form.get("revision", 0, type=int) or 0
        index.refresh()
        item = index.reply(reply_id)
        if item is None:
            return render_template("error.html", title="That reply no longer exists",
                                   message=f"Reply {reply_id} is not in the tracker store any "
                                           f"more (the conversation was deleted?); nothing was "
                                           f"saved."), 404
        problem = None
        if verdict not in VERDICTS:
            problem = "Choose Accept or Save correction."
        elif verdict == CORRECTED and not text.strip():
            problem = "Write the corrected reply, or choose Accept."
        elif article and article not in slugs():
            problem = f"'{article}' is not a help-center article."
        if problem:
            return render_template("review_conflict.html", item=item, problem=problem,
                                   theirs=None, text=text, article=article, revision=seen,
                                   slugs=slugs(), back=back), 400
        try:
            saved = db.save_review(reply_id, verdict, text, article, current_user.id, seen)
        except ReviewConflictError as conflict:
            return render_template("review_conflict.html", item=item, problem=None,
                                   theirs=conflict.current, text=text, article=article,
                                   revision=conflict.current["revision"], slugs=slugs(),
                                   back=back), 409
        db.write_corrections(config.path(config.corrections))
        audit(f"review:{verdict}", reply_id, saved.corrected_reply or "")
        flash(f"Saved: reply {reply_id} {verdict}.")
        return redirect(back)

    # --- dataset, models and jobs ------------------------------------------------
    def read_json(path: Path) -> Optional[Dict[str, Any]]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @app.get("/dataset")
    @requires("read")
    def dataset():
        reviews = db.reviews().values()
        return render_template(
            "dataset.html", manifest=read_json(dataset_dir / "manifest.json"),
            corrected=sum(r.verdict == CORRECTED for r in reviews),
            accepted=sum(r.verdict != CORRECTED for r in reviews),
            corrections_file=config.corrections, jobs=db.jobs(limit=10))

    @app.get("/models")
    @requires("read")
    def models():
        folders = sorted(p.name for p in versions.root.iterdir()
                         if p.is_dir() and not p.is_symlink()) if versions.root.is_dir() else []
        return render_template(
            "models.html", current=versions.current_version(), history=versions.history(),
            folders=folders, decision=read_json(report_dir / "decision.json"),
            plots=[p for p in REPORT_PLOTS if (report_dir / p).is_file()],
            jobs=db.jobs(limit=10))

    @app.get("/models/report/<name>")
    @requires("read")
    def report_plot(name: str):
        if name not in REPORT_PLOTS or not (report_dir / name).is_file():
            abort(404, description=f"No plot '{name}' in the evaluation report.")
        return send_file(report_dir / name, mimetype="image/png")

    @app.post("/jobs/<kind>")
    @requires("read")
    def start_job(kind: str):
        if kind not in KINDS:
            abort(404, description=f"No job '{kind}'.")
        if not current_user.can(KINDS[kind].needs):
            return render_template("error.html", title="Not allowed",
                                   message=f"Your role ({current_user.role}) may not "
                                           f"{KINDS[kind].needs}; ask a team lead."), 403
        try:
            job_id = runner.start(kind, current_user.id)
        except JobBusyError as e:
            flash(str(e))
            return redirect(_local(request.form.get("next"), url_for("jobs")))
        audit(kind, f"job {job_id}")
        return redirect(url_for("job", job_id=job_id))

    @app.get("/jobs")
    @requires("read")
    def jobs():
        return render_template("jobs.html", jobs=db.jobs(limit=100))

    @app.get("/jobs/<int:job_id>")
    @requires("read")
    def job(job_id: int):
        found = db.job(job_id)
        if found is None:
            abort(404, description=f"No job {job_id}.")
        return render_template("job.html", job=found, log=log_tail(found["log_path"]))

    # --- analytics and audit -------------------------------------------------------
    def summary() -> Dict[str, Any]:
        from components.feedback import analytics  # noqa: PLC0415 - matplotlib on demand

        last = index.reader().last_row()
        with analytics_lock:
            if analytics_cache.get("row") != last:
                analytics_cache.update(row=last, summary=analytics.summarise(config.store_url))
            return analytics_cache["summary"]

    @app.get("/analytics")
    @requires("read")
    def analytics_page():
        from components.feedback.redact import Redactor  # noqa: PLC0415

        data = summary()
        mask = Redactor({}).text
        gaps = [{"text": mask(g["text"]), "count": g["count"]}
                for g in data["top_fallback_messages"]]
        return render_template("analytics.html", s=data, gaps=gaps)

    @app.get("/analytics/plot.png")
    @requires("read")
    def analytics_plot():
        from components.feedback import analytics  # noqa: PLC0415

        with tempfile.TemporaryDirectory() as tmp:
            png = analytics.plot(summary(), Path(tmp) / "analytics.png")
            return Response(png.read_bytes(), mimetype="image/png")

    @app.get("/audit")
    @requires("audit")
    def audit_page():
        return render_template("audit.html", rows=db.audit_log())

    @app.after_request
    def no_store(response: Response) -> Response:
        # Pages hold customer text: never cached by the browser or a proxy.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                    "img-src 'self' data:; frame-ancestors 'none'")
        return response

    return app
