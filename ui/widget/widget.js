/*!
 * kbchat website widget: a chat bubble that answers visitors from the business's documents.
 *
 * Embed (one tag, anywhere in the page):
 *   <script src="https://YOUR-KBCHAT-SERVER/widget.js" data-bot="PUBLIC_KEY" async></script>
 *
 * The API base is where this file came from (origin + any path before /widget.js). Every request
 * sends "X-Bot-Key: PUBLIC_KEY" and "Content-Type: application/json":
 *   GET  /api/config?lang=BROWSER_LANGUAGE  {name, business_name, color, text_color, logo_url, welcome_message,
 *                          suggested_questions, max_question_chars, language, texts: {key: words}}: the
 *                          widget's own words come from texts (ui/widget/texts.json), English inline if not
 *   POST /api/chat/stream  {question, session_id} -> server-sent events: step {step, text}... (what it is
 *                          doing, shown under the typing dots), piece {text}..., then
 *                          answer {exchange_id, text, refused, citations, notes, ...} or error {message}
 *   POST /api/feedback     {exchange_id, session_id, rating: "up" | "down"}
 *   POST /api/lead         {session_id, name, email, message, consent} -> {ok, message}
 *   POST /api/handoff      {session_id, question} -> {state, message}: a person joins the chat
 *   GET  /api/handoff?session_id=..&after=N -> {state, messages: [{id, text}]}, polled while
 *                          the chat is with a person; questions then go to the team (stream event handoff)
 *   POST /api/handoff/back {session_id}: back to the assistant
 * Errors come back as {"detail": "..."} and are shown to the visitor as they are.
 *
 * Everything lives in a Shadow DOM under <div id="kbchat-widget">, so page CSS cannot reach it.
 * Server text is only ever set with textContent / text nodes, never parsed as HTML.
 * The conversation is kept for the browser tab in sessionStorage["kbchat:" + PUBLIC_KEY].
 * The file is plain ASCII (non-ASCII text as \u escapes), so it works whatever charset it is served with.
 * Test hooks: data-kbchat="..." attributes; a bot message has data-state="streaming" | "done".
 * data-mode="page" (the server's /chat page) shows the chat as the whole page: no bubble, always open.
 */
(function () {
  "use strict";
  if (window.__kbchatLoaded || document.getElementById("kbchat-widget")) return; // one per page
  var script = document.currentScript; // null for some async loads: find the tag instead
  if (!script || !script.hasAttribute("data-bot")) script = document.querySelector('script[data-bot][src*="widget.js"]');
  if (!script) return;
  var KEY = (script.getAttribute("data-bot") || "").trim();
  if (!KEY) return console.error('kbchat: add data-bot="YOUR_PUBLIC_KEY" to the script tag.');
  window.__kbchatLoaded = true;
  var PAGE = script.getAttribute("data-mode") === "page";
  var src = new URL(script.src, location.href);
  var BASE = src.origin + src.pathname.slice(0, src.pathname.lastIndexOf("/"));
  var NET = "Can't reach the chat right now. Please try again in a moment.";
  var TEXTS = {}; // the widget's words in the visitor's language (/api/config's texts)
  function T(key, english) { var t = TEXTS[key]; return typeof t === "string" && t ? t : english; }
  var SKEY = "kbchat:" + KEY;
  var LANG = (navigator.language || "en").slice(0, 2).toLowerCase(); // the visitor's; the server picks the words

  // -- the conversation, kept for this tab: {session_id, messages, open}
  function newId() { // randomUUID needs a secure page; else 32 random hex digits
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(16)), function (x) {
      return (x + 256).toString(16).slice(1);
    }).join("");
  }
  var state = null;
  try { state = JSON.parse(sessionStorage.getItem(SKEY)); } catch (e) { /* storage off */ }
  if (!state || typeof state.session_id !== "string" || !Array.isArray(state.messages)) {
    state = { session_id: newId(), messages: [], open: false };
  }
  state.messages = state.messages.filter(function (m) { return m && typeof m.text === "string"; });
  if (!state.handoff || typeof state.handoff !== "object") state.handoff = { state: "bot", after: 0 };
  function save() {
    state.messages = state.messages.slice(-60);
    try { sessionStorage.setItem(SKEY, JSON.stringify(state)); } catch (e) { /* memory only */ }
  }

  // -- helpers
  // h("button", {hk: "send", class: "x", onclick: f}, [node, "text"]); hk = the data-kbchat hook.
  function h(tag, props, kids) {
    var e = document.createElement(tag), k, v;
    for (k in props || {}) {
      v = props[k];
      if (v == null || v === false) continue;
      if (k === "hk") e.setAttribute("data-kbchat", v);
      else if (k === "text") e.textContent = v;
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    (kids || []).forEach(function (c) { if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function btn(props, kids) { props.type = "button"; return h("button", props, kids); }
  var ICONS = {
    chat: "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zM6 9h12v2H6zm8 5H6v-2h8zm4-6H6V6h12z",
    close: "M19 6.4 17.6 5 12 10.6 6.4 5 5 6.4l5.6 5.6L5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6z",
    send: "M2 21 23 12 2 3v7l15 2-15 2z",
    up: "M1 21h4V9H1zm22-11a2 2 0 0 0-2-2h-6.3l1-4.9c0-.4-.2-.8-.5-1.1L14.2 1 7.6 7.6C7.2 8 7 8.5 7 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1.2-.7z", // down: turned
    person: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-2.7 0-8 1.3-8 4v2h16v-2c0-2.7-5.3-4-8-4z"
  };
  function icon(name) {
    var ns = "http://www.w3.org/2000/svg", s = document.createElementNS(ns, "svg"), p = document.createElementNS(ns, "path");
    s.setAttribute("viewBox", "0 0 24 24"); s.setAttribute("aria-hidden", "true");
    p.setAttribute("d", ICONS[name]); s.appendChild(p);
    return s;
  }
  function str(v, d) { return typeof v === "string" && v.trim() ? v : d; }
  function color(v, d) { return typeof v === "string" && window.CSS && CSS.supports("color", v) ? v : d; }
  function httpUrl(u, base) { // http(s) links only; relative ones only with a base
    try { u = new URL(u, base); return /^https?:$/.test(u.protocol) ? u.href : ""; } catch (e) { return ""; }
  }

  // -- the API
  function api(path, body) {
    var o = { headers: { "X-Bot-Key": KEY, "Content-Type": "application/json" }, credentials: "omit", cache: "no-store" };
    if (body) { o.method = "POST"; o.body = JSON.stringify(body); }
    return fetch(BASE + path, o);
  }
  // The server's words: its fixed messages carry a code that names the same words in the visitor's
  // language (texts.json); the others (an owner's setting, a knowledge base's problem) come as written.
  function said(d, english) {
    if (!d || typeof d !== "object") return english;
    if (typeof d.code === "string" && typeof TEXTS[d.code] === "string" && TEXTS[d.code]) return TEXTS[d.code];
    return str(typeof d.detail === "string" ? d.detail : d.message, english);
  }
  async function detailOf(res) { // the server's {"detail": "...", "code": "..."} or a plain explanation
    var d = null;
    try { d = await res.json(); } catch (e) { /* not JSON */ }
    return said(d, res.status === 429 ? T("too_fast", "You're sending messages too quickly. Please wait a moment and try again.")
      : res.status >= 500 ? T("server_error", "Something went wrong on our side. Please try again.")
      : T("failed", "Sorry, that didn't work (error {n}).").replace("{n}", res.status));
  }
  async function post(path, body) { // -> {data} or {error: text for the visitor}
    var res;
    try { res = await api(path, body); } catch (e) { return { error: T("offline", NET) }; }
    if (!res.ok) return { error: await detailOf(res) };
    try { return { data: await res.json() }; } catch (e) { return { data: {} }; }
  }
  // Server-sent events over fetch (EventSource cannot POST). The line buffer joins lines split
  // across chunks; the streaming TextDecoder joins characters split across chunks.
  async function readEvents(res, onEvent) {
    var reader = res.body.getReader(), dec = new TextDecoder(), buf = "", name = "", data = [], r, lines;
    function line(l) {
      l = l.replace(/\r$/, "");
      if (!l) {
        if (data.length) onEvent(name || "message", data.join("\n"));
        name = ""; data = [];
      } else if (l[0] !== ":") {
        var i = l.indexOf(":"), f = i < 0 ? l : l.slice(0, i), v = i < 0 ? "" : l.slice(i + 1);
        if (v[0] === " ") v = v.slice(1);
        if (f === "event") name = v; else if (f === "data") data.push(v);
      }
    }
    do {
      r = await reader.read();
      buf += r.done ? dec.decode() : dec.decode(r.value, { stream: true });
      lines = buf.split("\n");
      buf = r.done ? "" : lines.pop();
      lines.forEach(line);
    } while (!r.done);
    line(""); // a last event without its blank line still counts
  }

  // -- styles (--c: brand colour, --t: text on it)
  var CSS_TEXT = [
    ":host{all:initial!important}*{box-sizing:border-box}[hidden]{display:none!important}",
    ".kb{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2328}",
    "button,input,textarea{font:inherit;color:inherit;margin:0}button{cursor:pointer}button:disabled{cursor:default}",
    ":focus-visible{outline:2px solid #0b57d0;outline-offset:2px}svg{width:20px;height:20px;fill:currentColor;flex:none}",
    ".bubble,.panel{position:fixed;right:20px;z-index:2147483000}",
    ".bubble{bottom:20px;width:56px;height:56px;padding:0;border:0;border-radius:50%;background:var(--c);color:var(--t);display:flex;align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".bubble svg{width:28px;height:28px}.bubble:focus-visible{outline:0;box-shadow:0 0 0 3px #fff,0 0 0 6px #0b57d0}",
    ".panel{bottom:88px;z-index:2147483001;width:370px;height:560px;max-width:calc(100vw - 40px);max-height:calc(100vh - 108px);background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}",
    ".head{display:flex;align-items:center;gap:10px;padding:12px 10px 12px 16px;background:var(--c);color:var(--t)}",
    ".head img{width:32px;height:32px;border-radius:50%;object-fit:cover;background:#fff}",
    ".name{flex:1;font-weight:600;font-size:16px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
    ".x{background:none;border:0;padding:6px;border-radius:8px;display:flex}.x:hover{background:rgba(127,127,127,.25)}.x:focus-visible{outline-color:var(--t)}",
    ".msgs,.lead{flex:1;overflow-y:auto;padding:16px;overscroll-behavior:contain;scrollbar-width:thin}",
    ".msgs{display:flex;flex-direction:column;gap:10px}.msgs>*{flex:none}",
    ".msg{max-width:86%;padding:9px 12px;border-radius:14px;overflow-wrap:anywhere}",
    ".user{align-self:flex-end;background:var(--c);color:var(--t);border-bottom-right-radius:4px}.user,.txt,details p{white-space:pre-wrap}",
    ".bot{align-self:flex-start;background:#f1f3f5;border-bottom-left-radius:4px}",
    ".err{background:#fdecea;color:#8a1c12;border:1px solid #f3c1bb;border-radius:10px;padding:8px 12px;font-size:13px}",
    ".note{align-self:center;text-align:center;font-size:12px;color:#57606a}",
    ".chips{display:flex;flex-wrap:wrap;gap:6px}",
    ".chip{border:1px solid var(--c);background:#fff;border-radius:16px;padding:6px 12px;font-size:13px;text-align:left}",
    ".chip:hover,.link:hover{background:#f6f8fa}",
    ".notes{margin:6px 0 0;padding:0;list-style:none}.notes,.fb,.srcs b{font-size:12px;color:#57606a}",
    ".srcs{margin-top:8px;padding-top:6px;border-top:1px solid #d8dee4;font-size:13px}.srcs b{display:block}",
    "summary{cursor:pointer;padding:2px 0;color:#0b4f8a}details a{color:#0b4f8a;font-size:12px}",
    "details p{margin:4px 0 6px;padding:6px 8px;background:#fff;border-radius:6px}",
    ".fb{display:flex;align-items:center;gap:2px;margin-top:6px}.fb span{margin-right:4px}",
    ".fb button{border:1px solid transparent;background:none;color:inherit;border-radius:6px;padding:3px}.fb svg,.link svg{width:16px;height:16px}[data-kbchat=thumb-down] svg{transform:rotate(180deg)}",
    ".fb button:hover:enabled,.fb [aria-pressed=true]{background:#fff}.fb [aria-pressed=true]{color:#1f2328;border-color:#afb8c1}",
    ".link{display:inline-flex;align-items:center;gap:6px;border:1px solid #d0d7de;background:#fff;border-radius:8px;padding:6px 10px;font-size:13px;margin-top:8px}",
    ".typing{display:flex;gap:4px;padding:5px 0}.typing i{width:7px;height:7px;border-radius:50%;background:#8c959f;animation:kbd 1s infinite}",
    ".typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}",
    "@keyframes kbd{0%,80%,100%{opacity:.3}40%{opacity:1;transform:translateY(-3px)}}",
    ".compose{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 4px;border-top:1px solid #d8dee4}",
    ".step{font-size:12px;color:#57606a}.step:empty{display:none}",
    ".hint{padding:0 12px;font-size:12px;color:#57606a}.hint:empty{display:none}",
    "textarea,input{border:1px solid #afb8c1;border-radius:10px;padding:8px 10px;background:#fff;width:100%}",
    ".compose textarea{resize:none;height:38px;max-height:120px}",
    ".send{width:38px;height:38px;flex:none;border:0;border-radius:10px;background:var(--c);color:var(--t);display:flex;align-items:center;justify-content:center}.send:disabled{opacity:.45}",
    ".foot{text-align:center;padding:0 12px 6px}.foot .link{border:0;margin:0;color:#3d444d}",
    ".lead h2{font-size:16px;margin:0 0 4px}.lead p{margin:0 0 12px;color:#57606a}",
    "label{display:block;margin-bottom:10px;font-size:13px;font-weight:600}label>textarea,label>input{display:block;margin-top:4px;font-weight:400;resize:vertical}",
    ".consent{display:flex;gap:8px;font-weight:400}.consent input{width:16px;height:16px;margin-top:2px;flex:none}",
    "[aria-invalid=true]{border-color:#cf222e;outline-color:#cf222e}",
    ".primary{border:0;border-radius:8px;padding:9px 18px;background:var(--c);color:var(--t);font-weight:600}.primary:disabled{opacity:.6}",
    ".status{margin:0 0 10px;font-size:13px}.status:empty{display:none}.bad{color:#a40e26}.ok{color:#1a7f37;font-weight:600}",
    ".team{background:#e8f0fe}.who{font-size:11px;font-weight:600;color:#57606a;margin-bottom:2px}",
    ".bar{display:flex;align-items:center;gap:8px;padding:6px 12px;background:#fff8c5;border-top:1px solid #d8dee4;font-size:13px}.bar span{flex:1}.bar .link{margin:0;padding:3px 8px;font-size:12px}",
    ".live{margin:0 0 14px;padding:10px 12px;border:1px solid #d0d7de;border-radius:10px}.live p{margin:0 0 8px;color:#1f2328}",
    ".page .panel{top:0;bottom:0;left:0;right:0;margin:0 auto;width:100%;height:100%;max-width:760px;max-height:none;border-radius:0;box-shadow:0 0 24px rgba(0,0,0,.12)}",
    ".page .msg{max-width:80%}",
    "@media (max-width:480px){.panel{top:0;left:0;right:0;bottom:0;width:100%;height:100%;max-width:none;max-height:none;border-radius:0}textarea,input{font-size:16px}}",
    "@media (prefers-reduced-motion:reduce){.typing i{animation:none}}"
  ].join("\n");

  // -- the widget
  function build(cfg) {
    var NAME = str(cfg.name, "Chat"), BUSINESS = str(cfg.business_name, ""), busy = false;
    var MAX = typeof cfg.max_question_chars === "number" && cfg.max_question_chars > 0 ? cfg.max_question_chars : 1000;
    var host = h("div", { id: "kbchat-widget" }), root = host.attachShadow({ mode: "open" });
    var kb = h("div", { class: PAGE ? "kb page" : "kb" });
    kb.style.setProperty("--c", color(cfg.color, "#2f6f4f"));
    kb.style.setProperty("--t", color(cfg.text_color, "#fff"));
    root.appendChild(h("style", { text: CSS_TEXT }));
    root.appendChild(kb);

    var bubble = btn({ class: "bubble", hk: "bubble", "aria-label": T("open", "Open chat"), "aria-expanded": "false",
      onclick: function () { setOpen(panel.hidden, true); } }, [icon("chat")]);
    var logo = str(cfg.logo_url) && httpUrl(cfg.logo_url, BASE + "/");
    var msgs = h("div", { class: "msgs", hk: "messages", role: "log", "aria-live": "polite", "aria-label": T("conversation", "Conversation") });
    var input = h("textarea", { hk: "input", rows: "1", maxlength: String(MAX), "aria-label": T("question", "Your question"),
      "aria-describedby": "kbchat-hint", placeholder: T("placeholder", "Type your question\u2026") });
    var send = btn({ class: "send", hk: "send", "aria-label": T("send", "Send"), onclick: function () { ask(input.value); } }, [icon("send")]);
    var hint = h("div", { class: "hint", hk: "hint", id: "kbchat-hint", role: "status" });
    var compose = h("div", { class: "compose-wrap" }, [h("div", { class: "compose" }, [input, send]), hint]);
    var foot = h("div", { class: "foot" }, [
      btn({ class: "link", hk: "human", "aria-label": T("person", "Talk to a person"), onclick: function () { openLead(""); } }, [icon("person"), T("person", "Talk to a person")])
    ]);

    // the "talk to a person" form, shown in place of the conversation
    var fName = h("input", { type: "text", hk: "lead-name", autocomplete: "name", maxlength: "200" });
    var fEmail = h("input", { type: "email", hk: "lead-email", autocomplete: "email", maxlength: "320" });
    var fMsg = h("textarea", { hk: "lead-message", rows: "4", maxlength: "4000" });
    var fConsent = h("input", { type: "checkbox", hk: "lead-consent" });
    var fSubmit = h("button", { type: "submit", class: "primary", hk: "lead-submit" }, [T("send", "Send")]);
    var fStatus = h("div", { class: "status", hk: "lead-status", role: "status" });
    var form = h("form", { hk: "lead-form", novalidate: true, onsubmit: submitLead }, [
      h("label", null, [T("name", "Name"), fName]),
      h("label", null, [T("email", "Email"), fEmail]),
      h("label", null, [T("help", "How can we help?"), fMsg]),
      h("label", { class: "consent" }, [fConsent, h("span", { text: BUSINESS
        ? T("consent_business", "I agree that {business} may contact me about this request.").replace("{business}", BUSINESS)
        : T("consent", "I agree to be contacted about this request.") })]),
      fSubmit
    ]);
    var back = btn({ class: "link", hk: "lead-back", onclick: closeLead }, [T("back", "\u2190 Back to chat")]);
    var live = h("div", { class: "live" }, [
      h("p", { text: T("live_intro", "Someone from our team can join this chat and answer you here.") }),
      btn({ class: "primary", hk: "ask-person", onclick: askPerson }, [T("live_button", "Chat with a person")])
    ]);
    var lead = h("div", { class: "lead", hidden: true }, [
      h("h2", { text: T("person", "Talk to a person") }),
      live,
      h("p", { text: T("leave_details", "Or leave your details and someone from our team will get back to you.") }),
      fStatus, form, back
    ]);
    var barText = h("span", { hk: "handoff-status", role: "status" });
    var bar = h("div", { class: "bar", hk: "handoff-bar", hidden: true }, [
      barText, btn({ class: "link", hk: "back-to-bot", onclick: backToBot }, [T("back_to_bot", "Back to the assistant")])
    ]);
    var panel = h("div", { class: "panel", hk: "panel", role: PAGE ? "main" : "dialog", "aria-label": NAME + " chat", hidden: true }, [
      h("div", { class: "head" }, [
        logo && h("img", { src: logo, alt: "", onerror: function () { this.hidden = true; } }),
        h("div", { class: "name", text: NAME }),
        !PAGE && btn({ class: "x", hk: "close", "aria-label": T("close", "Close chat"), onclick: function () { setOpen(false, true); } }, [icon("close")])
      ]),
      msgs, lead, bar, compose, foot
    ]);
    kb.appendChild(panel);
    if (!PAGE) kb.appendChild(bubble);

    kb.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && !panel.hidden && !PAGE) { e.preventDefault(); setOpen(false, true); }
    });
    input.addEventListener("keydown", function (e) { // Enter sends, Shift+Enter is a new line
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(input.value); }
    });
    input.addEventListener("input", function () {
      grow();
      hint.textContent = input.value.length >= MAX
        ? T("too_long", "Questions can be up to {n} characters.").replace("{n}", MAX.toLocaleString(LANG)) : "";
    });
    function grow() {
      input.style.height = "auto";
      input.style.height = Math.min(Math.max(input.scrollHeight + 2, 38), 120) + "px";
    }
    function setOpen(open, focus) {
      state.open = open; save();
      panel.hidden = !open;
      bubble.setAttribute("aria-expanded", open);
      bubble.setAttribute("aria-label", open ? T("close", "Close chat") : T("open", "Open chat"));
      bubble.replaceChild(icon(open ? "close" : "chat"), bubble.firstChild);
      if (open) { scrollDown(true); if (focus) (lead.hidden ? input : fName).focus(); }
      else if (focus && !PAGE) bubble.focus();
    }
    function scrollDown(force) {
      if (force || msgs.scrollHeight - msgs.scrollTop - msgs.clientHeight < 120) msgs.scrollTop = msgs.scrollHeight;
    }

    // -- messages: {role: "user"|"bot"|"note"|"error", text, ...}; errors are shown, not stored
    function show(m) {
      var el = m.role === "user" ? h("div", { class: "msg user", hk: "message-user" }, [m.text])
        : m.role === "bot" ? fillBot(h("div", { class: "msg bot", hk: "message-bot" }), m)
        : m.role === "team" ? h("div", { class: "msg bot team", hk: "message-team" }, [
          h("div", { class: "who", text: T("our_team", "Our team") }), h("div", { class: "txt", text: m.text })])
        : m.role === "error" ? h("div", { class: "err", hk: "error" }, [m.text])
        : h("div", { class: "note", hk: "notice" }, [m.text]);
      msgs.appendChild(el);
      scrollDown(true);
    }
    function add(m) { state.messages.push(m); save(); show(m); }

    // a finished answer: {text, question, exchange_id, refused, citations, notes, rating}
    function fillBot(el, m) {
      var notes = [].concat(m.notes || []).filter(function (n) { return str(n); });
      var cites = [].concat(m.citations || []).filter(function (c) { return c && typeof c === "object"; });
      el.textContent = "";
      el.setAttribute("data-state", "done");
      el.removeAttribute("aria-busy");
      el.appendChild(h("div", { class: "txt", text: m.text }));
      if (notes.length) el.appendChild(h("ul", { class: "notes" }, notes.map(function (n) { return h("li", { text: n }); })));
      if (cites.length) {
        el.appendChild(h("div", { class: "srcs", hk: "sources" }, [h("b", { text: T("sources", "Sources") })].concat(cites.map(function (c, i) {
          var link = httpUrl(c.url || c.source);
          return h("details", { hk: "source" }, [
            h("summary", { text: "[" + (c.n != null ? c.n : i + 1) + "] " + str(c.label, str(c.source, T("source", "Source"))) }),
            h("p", { text: str(c.snippet, "") }),
            link && h("a", { href: link, target: "_blank", rel: "noopener noreferrer", text: T("open_page", "Open the page") })
          ]);
        }))));
      }
      if (typeof m.exchange_id === "number") el.appendChild(thumbs(m));
      if (m.refused) {
        el.appendChild(h("div", { class: "offer" }, [
          h("div", { text: T("offer", "Would you like someone from our team to get back to you?") }),
          btn({ class: "link", hk: "human-offer", onclick: function () { openLead(m.question); } },
            [icon("person"), T("contact_team", "Contact our team")])
        ]));
      }
      return el;
    }

    function thumbs(m) {
      var label = h("span"), up, down;
      function mark(text) {
        up.setAttribute("aria-pressed", m.rating === "up");
        down.setAttribute("aria-pressed", m.rating === "down");
        up.disabled = down.disabled = !!m.rating;
        label.textContent = text || (m.rating ? T("thanks_feedback", "Thanks for your feedback!") : T("helpful", "Was this helpful?"));
      }
      async function rate(r) {
        if (m.rating) return;
        m.rating = r; mark(); save();
        input.focus(); // the pressed button is now disabled and would drop the focus
        var res = await post("/api/feedback", { exchange_id: m.exchange_id, session_id: state.session_id, rating: r });
        if (res.error) { m.rating = null; save(); mark(res.error); }
      }
      up = btn({ hk: "thumb-up", "aria-label": T("helped", "This answer helped"), onclick: function () { rate("up"); } }, [icon("up")]);
      down = btn({ hk: "thumb-down", "aria-label": T("not_helped", "This answer did not help"), onclick: function () { rate("down"); } },
        [icon("up")]); // turned upside down by the CSS
      mark();
      return h("div", { class: "fb" }, [label, up, down]);
    }

    // -- asking: stream the answer into a bot message
    async function ask(q) {
      q = (q || "").trim();
      if (!q) { hint.textContent = T("empty", "Type your question first."); input.focus(); return; }
      if (busy) return;
      hint.textContent = "";
      busy = send.disabled = true;
      var chips = msgs.querySelector(".chips"), text = "", txt = null, rec = null, err = null, res, toTeam = null;
      if (chips) chips.remove();
      input.value = ""; grow();
      add({ role: "user", text: q });
      var step = h("span", { class: "step", hk: "step" });
      var el = h("div", { class: "msg bot", hk: "message-bot", "data-state": "streaming", "aria-busy": "true" }, [
        h("div", { class: "typing", role: "img", "aria-label": T("typing", "{name} is typing").replace("{name}", NAME) }, [h("i"), h("i"), h("i")]), step
      ]);
      msgs.appendChild(el); scrollDown(true);
      try {
        res = await api("/api/chat/stream", { question: q, session_id: state.session_id });
        if (!res.ok) err = await detailOf(res);
        else await readEvents(res, function (ev, raw) {
          var d;
          try { d = JSON.parse(raw); } catch (e) { return; }
          if (!d || typeof d !== "object") return;
          if (ev === "step" && typeof d.text === "string") {
            if (!txt) step.textContent = d.text;  // what it is doing, until the words come
          } else if (ev === "piece" && typeof d.text === "string") {
            if (!txt) { el.textContent = ""; txt = el.appendChild(h("div", { class: "txt" })); }
            text += d.text; txt.append(d.text); scrollDown();  // a text node per piece: never HTML
          } else if (ev === "answer") rec = d;
          else if (ev === "handoff") toTeam = d;
          else if (ev === "error") err = said(d, T("wrong", "Sorry, something went wrong. Please try again."));
        });
      } catch (e) { err = err || T("offline", NET); }
      if (toTeam) {
        el.remove();
        setHandoff(str(toTeam.state, "waiting"));
        busy = send.disabled = false;
        return;
      }
      if (rec || text) {
        var m = { role: "bot", text: text, question: q };
        if (rec) {
          m.text = typeof rec.text === "string" ? rec.text : text;
          m.exchange_id = rec.exchange_id; m.refused = !!rec.refused; m.citations = rec.citations; m.notes = rec.notes;
        }
        state.messages.push(m); save();
        fillBot(el, m);
      } else el.remove();
      if (!rec && !err) err = T("cut_off", "The answer was cut off. Please try again.");
      if (err) show({ role: "error", text: err });
      busy = send.disabled = false;
    }

    // -- live handoff: a person answers in this chat while the tab is open (polled every few seconds)
    var poller = null;
    function lastQuestion() {
      for (var i = state.messages.length - 1; i >= 0; i--) if (state.messages[i].role === "user") return state.messages[i].text;
      return "";
    }
    function setHandoff(s) { // "waiting" | "live" | "bot"
      var was = state.handoff.state;
      state.handoff.state = s; save();
      bar.hidden = s === "bot";
      barText.textContent = s === "waiting" ? T("waiting", "Waiting for someone from our team\u2026")
        : s === "live" ? T("with_team", "You're chatting with our team.") : "";
      if (s === "bot") {
        if (poller) { clearInterval(poller); poller = null; }
        if (was !== "bot") add({ role: "note", text: T("with_bot", "You're chatting with our assistant again.") });
      } else if (!poller) {
        poller = setInterval(poll, 3000);
        poll();
      }
    }
    async function askPerson() {
      var r = await post("/api/handoff", { session_id: state.session_id, question: lastQuestion() });
      if (r.error) return status(r.error, "bad");
      closeLead();
      add({ role: "note", text: said(r.data, T("asked_person", "We've asked someone from our team to join this chat.")) });
      setHandoff("waiting");
    }
    async function backToBot() {
      var r = await post("/api/handoff/back", { session_id: state.session_id });
      if (r.error) return show({ role: "error", text: r.error });
      setHandoff("bot");
    }
    async function poll() {
      var res, d;
      try {
        res = await api("/api/handoff?session_id=" + encodeURIComponent(state.session_id) + "&after=" + (state.handoff.after || 0));
        if (!res.ok) return;
        d = await res.json();
      } catch (e) { return; } // offline for a moment: the next poll tries again
      [].concat(d.messages || []).forEach(function (m) {
        if (!m || typeof m.text !== "string" || m.id <= (state.handoff.after || 0)) return;
        state.handoff.after = m.id;
        add({ role: "team", text: m.text });
      });
      if (typeof d.state === "string" && d.state !== state.handoff.state) setHandoff(d.state);
    }

    // -- talk to a person
    function openLead(prefill) {
      lead.hidden = form.hidden = false; msgs.hidden = compose.hidden = foot.hidden = bar.hidden = true;
      live.hidden = state.handoff.state !== "bot"; // already with a person: only the form is left
      status("", "");
      if (prefill && !fMsg.value) fMsg.value = prefill;
      fName.focus();
    }
    function closeLead() {
      lead.hidden = true; msgs.hidden = compose.hidden = foot.hidden = false;
      bar.hidden = state.handoff.state === "bot";
      scrollDown(true); input.focus();
    }
    function status(text, kind) { fStatus.textContent = text; fStatus.className = "status " + kind; }
    async function submitLead(e) {
      e.preventDefault();
      var name = fName.value.trim(), email = fEmail.value.trim(), message = fMsg.value.trim(), why = [], first = null;
      function check(ok, field, problem) {
        field.setAttribute("aria-invalid", !ok);
        if (!ok) { why.push(problem); first = first || field; }
      }
      check(name, fName, T("need_name", "Please enter your name."));
      check(/^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/.test(email), fEmail,
        email ? T("check_email", "Please check your email address (like name@example.com).")
          : T("need_email", "Please enter your email address."));
      check(message, fMsg, T("need_message", "Please tell us how we can help."));
      check(fConsent.checked, fConsent, T("need_consent", "Please tick the box so we may contact you."));
      if (first) { status(why.join(" "), "bad"); return first.focus(); }
      fSubmit.disabled = true; status(T("sending", "Sending\u2026"), "");
      var r = await post("/api/lead", { session_id: state.session_id, name: name, email: email, message: message,
        consent: true });
      fSubmit.disabled = false;
      if (r.error) return status(r.error, "bad");
      var thanks = said(r.data, T("lead_thanks", "Thanks! We'll get back to you soon."));
      form.reset(); form.hidden = true;
      status(thanks, "ok");
      add({ role: "note", text: thanks });
      back.focus();
    }

    // -- first paint: welcome, suggested questions (until the first question), the stored chat
    msgs.appendChild(h("div", { class: "msg bot", hk: "message-bot", "data-state": "done", "data-kind": "welcome" }, [
      h("div", { class: "txt", text: str(cfg.welcome_message, "Hi! How can I help you today?") })
    ]));
    var sugg = [].concat(cfg.suggested_questions || []).filter(function (q) { return str(q); }).slice(0, 6);
    if (sugg.length && !state.messages.some(function (m) { return m.role === "user"; })) {
      msgs.appendChild(h("div", { class: "chips", role: "group", "aria-label": T("suggested", "Suggested questions") }, sugg.map(function (q) {
        return btn({ class: "chip", hk: "suggestion", onclick: function () { ask(q); input.focus(); } }, [q]);
      })));
    }
    state.messages.forEach(show);
    document.body.appendChild(host);
    if (state.handoff.state !== "bot") setHandoff(state.handoff.state); // still with a person after a reload
    if (PAGE) { panel.hidden = false; scrollDown(true); input.focus(); }
    else if (state.open) setOpen(true, false); // open again after a reload, without taking the page's focus
  }

  async function start() {
    var cfg = {}, res;
    try {
      res = await api("/api/config?lang=" + encodeURIComponent(LANG));
      if (res.ok) cfg = (await res.json()) || {};
      else if (res.status < 500) return console.error("kbchat: " + (await detailOf(res))); // wrong key or site
    } catch (e) { /* unreachable now: show the widget anyway; questions will say so */ }
    if (cfg.texts && typeof cfg.texts === "object") TEXTS = cfg.texts;
    build(cfg);
  }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
