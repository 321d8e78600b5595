// Kestrel web chat: a small client of Rasa's socketio channel (Rasa 3.6).
//
// Protocol (rasa/core/channels/socketio.py, credentials.yml `socketio`):
//   client -> "session_request" {session_id}   server -> "session_confirm" session_id
//   client -> "user_uttered" {message, session_id}
//   server -> "bot_uttered" {text, quick_replies?: [{title, payload}], attachment?}
// With session_persistence the session_id is the tracker's sender_id, so keeping it in
// localStorage keeps the conversation across reloads; the transcript shown is kept next
// to it (the channel does not replay history).
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

  // state: {sessionId: string|null, transcript: [{from: "bot"|"user", text, buttons?}]}
  const state = load();

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE_KEY));
      if (saved && Array.isArray(saved.transcript)) return saved;
    } catch (e) { /* unreadable: start afresh */ }
    return { sessionId: null, transcript: [] };
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

  function render(entry, index) {
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
          // A button is used once: rating the same reply twice is not offered.
          state.transcript[index].buttons = [];
          row.remove();
          send(button.payload, button.title);
        });
        row.appendChild(b);
      }
      log.appendChild(row);
    }
    log.scrollTop = log.scrollHeight;
  }

  function add(entry) {
    state.transcript.push(entry);
    save();
    render(entry, state.transcript.length - 1);
  }

  function setStatus(text, stateName) {
    status.textContent = text;
    status.dataset.state = stateName;
  }

  state.transcript.forEach(render);

  // Long-polling only: Rasa 3.6 runs socket.io on Sanic 21.12, whose websocket upgrade
  // with python-engineio 4.15 fails ("Invalid frame header"). Polling is cross-origin
  // HTTP, so the Rasa server must list this page's origin in --cors (make serve does).
  const socket = io(server, { transports: ["polling"] });

  socket.on("connect", () => {
    socket.emit("session_request", { session_id: state.sessionId });
  });
  socket.on("session_confirm", (sessionId) => {
    state.sessionId = typeof sessionId === "string" ? sessionId : sessionId.session_id;
    save();
    document.body.dataset.sessionId = state.sessionId;
    setStatus("online", "online");
  });
  socket.on("disconnect", () => setStatus("offline, reconnecting…", "offline"));
  socket.on("connect_error", () => setStatus("offline, reconnecting…", "offline"));

  socket.on("bot_uttered", (message) => {
    const buttons = (message.quick_replies || message.buttons || [])
      .map((b) => ({ title: String(b.title), payload: String(b.payload) }));
    let text = message.text || "";
    if (!text && message.attachment) text = "[attachment]";
    if (text || buttons.length) add({ from: "bot", text, buttons });
  });

  function send(message, shown) {
    if (!state.sessionId) return false;
    socket.emit("user_uttered", { message, session_id: state.sessionId });
    add({ from: "user", text: shown || message });
    return true;
  }

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && send(text)) input.value = "";
  });
})();
