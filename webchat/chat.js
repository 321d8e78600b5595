// Kestrel web chat: a small client of the project's socket.io channel
// (components/channels/socketio_channel.py, on Rasa 3.6's socketio channel).
//
// Protocol:
//   client -> "session_request" {session_id, session_token}  (both null for a new session)
//   server -> "session_confirm" session_id
//   server -> "session_history" {session_id, session_token, messages: [
//                {from: "user", text} | {from: "bot", message: <a bot_uttered payload>}]}
//   client -> "user_uttered" {message, session_id}
//   server -> "bot_uttered" {text, quick_replies?: [{title, payload}], attachment?}
// The session id is the tracker's sender_id. The server resumes it only with its token
// and then sends the conversation so far from the tracker store, so the browser keeps
// only {sessionId, sessionToken} (localStorage) and shows what the server sends: after a
// reload, a cleared cache, a dropped connection, or on another device opened with
// #session=<id>&token=<token>.
// A reply from the help center ends with a citation line, "Source: <title> (<url>)"
// (components/generator/answers.py writes it in citation() and reads it in
// split_citation(); splitCitation below reads it the same way): the page shows the
// title as a link to the article.
(function () {
  "use strict";

  const STORE_KEY = "kestrel-webchat";
  const params = new URLSearchParams(location.search);
  const server = params.get("server") || `${location.protocol}//${location.hostname}:5005`;

  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const composer = document.getElementById("composer");
  const input = document.getElementById("message");

  // state: {sessionId: string|null, sessionToken: string|null}; the transcript is the server's.
  const state = load();

  function load() {
    // #session=<id>&token=<token>: the conversation opened on another device. Taken
    // once, then removed from the address bar.
    const resume = new URLSearchParams(location.hash.slice(1));
    if (resume.get("session") && resume.get("token")) {
      history.replaceState(null, "", location.pathname + location.search);
      return { sessionId: resume.get("session"), sessionToken: resume.get("token") };
    }
    try {
      const saved = JSON.parse(localStorage.getItem(STORE_KEY));
      if (saved && typeof saved.sessionId === "string") {
        return { sessionId: saved.sessionId, sessionToken: saved.sessionToken || null };
      }
    } catch (e) { /* unreadable: start afresh */ }
    return { sessionId: null, sessionToken: null };
  }

  function save() {
    localStorage.setItem(STORE_KEY, JSON.stringify(state));
  }

  const CITATION_LINE = /^Source: (\S.*?) \((https?:\/\/[^\s()]+)\)$/;

  // {body, citation: {title, url} | null}: the citation of a reply whose last line is
  // one, with an http(s) link; otherwise the whole text and null.
  function splitCitation(text) {
    const trimmed = text.trimEnd();
    const cut = trimmed.lastIndexOf("\n");
    const match = cut < 0 ? null : CITATION_LINE.exec(trimmed.slice(cut + 1).trim());
    if (!match) return { body: text, citation: null };
    try {
      new URL(match[2]);  // the pattern allows http(s) only; this refuses what is no URL
    } catch (e) {
      return { body: text, citation: null };
    }
    return { body: trimmed.slice(0, cut).trimEnd(), citation: { title: match[1], url: match[2] } };
  }

  // Message text goes in as text nodes only, never innerHTML: replies are text.
  function fillMessage(item, entry) {
    const text = String(entry.text);
    const { body, citation } = entry.from === "bot"
      ? splitCitation(text) : { body: text, citation: null };
    item.textContent = body;
    if (!citation) return;
    const source = document.createElement("span");
    source.className = "source";
    const link = document.createElement("a");
    link.href = citation.url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.textContent = citation.title;
    source.append("Source: ", link);
    item.append("\n", source);  // .msg keeps line breaks (white-space: pre-wrap)
  }

  // entry: {from: "bot"|"user", text, buttons?: [{title, payload}]}
  function render(entry) {
    const item = document.createElement("li");
    item.className = `msg ${entry.from}`;
    fillMessage(item, entry);
    log.appendChild(item);
    if (entry.buttons && entry.buttons.length) {
      const row = document.createElement("li");
      row.className = "buttons";
      for (const button of entry.buttons) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = button.title;
        b.addEventListener("click", () => {
          row.remove(); // a button is used once: rating the same reply twice is not offered
          send(button.payload, button.title);
        });
        row.appendChild(b);
      }
      log.appendChild(row);
    }
    log.scrollTop = log.scrollHeight;
  }

  // A bot_uttered payload as an entry, or null when it has nothing to show.
  function botEntry(message) {
    const buttons = (message.quick_replies || message.buttons || [])
      .map((b) => ({ title: String(b.title), payload: String(b.payload) }));
    let text = message.text || "";
    if (!text && message.attachment) text = "[attachment]";
    return text || buttons.length ? { from: "bot", text, buttons } : null;
  }

  function setStatus(text, stateName) {
    status.textContent = text;
    status.dataset.state = stateName;
  }

  // Polling first, then the upgrade to a websocket; polling stays the fallback where a
  // proxy refuses websockets. Polling is cross-origin HTTP, so the Rasa server must list
  // this page's origin in --cors (make serve does).
  const socket = io(server);
  const showTransport = () => { document.body.dataset.transport = socket.io.engine.transport.name; };

  socket.on("connect", () => {
    showTransport();
    socket.io.engine.once("upgrade", showTransport);
    socket.emit("session_request", { session_id: state.sessionId, session_token: state.sessionToken });
  });
  socket.on("session_confirm", (sessionId) => {
    state.sessionId = typeof sessionId === "string" ? sessionId : sessionId.session_id;
    document.body.dataset.sessionId = state.sessionId;
  });
  // After every session_request (page load, reconnect): the whole conversation so far.
  socket.on("session_history", (session) => {
    state.sessionId = session.session_id;
    state.sessionToken = session.session_token;
    save();
    document.body.dataset.sessionId = state.sessionId;
    log.replaceChildren();
    for (const m of session.messages || []) {
      const entry = m.from === "user" ? { from: "user", text: String(m.text) } : botEntry(m.message || {});
      if (entry) render(entry);
    }
    setStatus("online", "online");
  });
  socket.on("disconnect", () => setStatus("offline, reconnecting…", "offline"));
  socket.on("connect_error", () => setStatus("offline, reconnecting…", "offline"));

  socket.on("bot_uttered", (message) => {
    const entry = botEntry(message);
    if (entry) render(entry);
  });

  function send(message, shown) {
    if (!state.sessionId || status.dataset.state !== "online") return false;
    socket.emit("user_uttered", { message, session_id: state.sessionId });
    render({ from: "user", text: shown || message });
    return true;
  }

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && send(text)) input.value = "";
  });
})();
