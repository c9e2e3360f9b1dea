// careerbot chat widget. Embed with one script tag:
//   <script src="https://HOST/widget.js" data-api="https://HOST"></script>
// Options (all optional), as attributes of that tag:
//   data-mode="launcher"   a round button in the corner that opens a chat panel
//                          (default "inline": the conversation sits where the tag is)
//   data-title="..."       the panel's heading
//   data-accent="#0a7"     the accent colour (any CSS colour); the host page may instead
//                          set the CSS custom property --careerbot-accent
// Everything from the server is shown as text (never parsed as HTML); styles live in a
// shadow root through a constructed stylesheet, so they work under `style-src 'self'`
// and neither leak out nor take the host page's rules.
(function () {
  "use strict";

  const script = document.currentScript;
  const options = (script && script.dataset) || {};
  const api = (options.api || "").replace(/\/+$/, "");
  const launcherMode = options.mode === "launcher";
  const title = Array.from(options.title || "Ask people who do the job").slice(0, 80).join("");
  // A colour written plainly: CSS.supports alone would also pass var(..., url(...)).
  const COLOUR = /^(#[0-9a-f]{3,8}|[a-z]+|(rgb|rgba|hsl|hsla)\([0-9a-z\s.,%/+-]*\))$/i;
  const accent = COLOUR.test(options.accent || "") && CSS.supports("color", options.accent)
    ? options.accent : null;
  const TIMEOUT_MS = 20000;
  // The API's limit on a question, and the control characters it refuses: those that break
  // a line (from text copied out of a PDF, say) become line breaks, the others spaces.
  const MAX_CHARS = 1000;
  // What the box holds: a post pasted whole, to be shortened there, but not a pasted book
  // (10 MB took Chromium seconds to lay out, and the count as long at every keystroke).
  const BOX_UNITS = 10 * MAX_CHARS;
  const CONTROLS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;
  // Spaces and characters that show nothing (zero-width ones, a BOM): the API trims them
  // at either end too, and refuses a question of nothing else.
  const BLANK = /[\s\u200B-\u200D\u2060\uFEFF]/;
  const BREAKS = "\u000B\u000C\u0085";
  // A question as it is sent, and its length as the API counts it (in characters, where
  // JavaScript's length counts an emoji as two). Trimmed a character at a time: a regular
  // expression anchored at the end backtracks, and took 0.6 s on "a", 40,000 spaces, "b".
  const tidy = (text) => {
    text = text.replace(CONTROLS, (c) => (BREAKS.includes(c) ? "\n" : " "));
    let start = 0;
    let end = text.length;
    while (start < end && BLANK.test(text[start])) start += 1;
    while (end > start && BLANK.test(text[end - 1])) end -= 1;
    return text.slice(start, end);
  };
  const characters = (text) => [...tidy(text)].length;
  // An answer longer than its passage by this many characters starts as the passage alone.
  const MORE = 160;
  // Confidence bands, chosen on the evaluation sets (README, "Confidence labels"): a first
  // answer scoring at least STRONG that leads the next one (or the threshold) by LEAD.
  const STRONG = 0.45;
  const LEAD = 0.05;
  const THRESHOLD = 0.3;
  // Where the launcher's open panel fills the screen: a phone, or a short window.
  const FULL_SCREEN = "(max-width: 30rem), (max-height: 32rem)";

  const STYLE = `
    /* !important here beats even the host page's !important rules on this element. */
    :host { all: initial !important; display: block !important;
      box-sizing: border-box !important; width: 100% !important; max-width: 44rem !important;
      color: #1f2328 !important; font: 15px/1.5 system-ui,
      -apple-system, "Segoe UI", Roboto, sans-serif !important; }
    :host(.careerbot-launcher) { width: 0 !important; height: 0 !important; }
    *, *::before, *::after { box-sizing: border-box; }
    .panel { --accent: var(--careerbot-accent, #0969da); background: #fff;
      border: 1px solid #d0d7de; border-radius: 12px; display: flex;
      flex-direction: column; overflow-wrap: anywhere; }
    .head { display: flex; align-items: center; gap: .5rem; padding: .75rem 1rem 0; }
    h2 { font-size: 1.05rem; margin: 0; flex: 1; min-width: 0; }
    .log { display: flex; flex-direction: column; gap: .75rem; padding: .75rem 1rem; }
    .welcome p { margin: 0 0 .5rem; color: #57606a; }
    .asked { align-self: flex-end; background: var(--accent); color: #fff;
      border-radius: 14px 14px 4px 14px; padding: .4rem .8rem; max-width: 85%;
      overflow-wrap: anywhere; white-space: pre-wrap; tab-size: 4; margin: .25rem 0 0;
      scroll-margin-top: .75rem; }
    .entry { display: flex; flex-direction: column; gap: .6rem; }
    .card { border: 1px solid #d0d7de; border-radius: 10px; padding: .75rem; margin: 0;
      scroll-margin: .75rem; }
    .byline { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem .6rem; }
    .avatar { flex: none; width: 2.25rem; height: 2.25rem; border-radius: 50%;
      background: var(--accent); color: #fff; display: grid; place-items: center;
      font-size: .85rem; font-weight: 600; }
    .byline div { flex: 1 1 9rem; min-width: 0; }
    .who, .role { margin: 0; }
    .who { font-weight: 600; }
    .role { color: #57606a; font-size: .85rem; }
    .confidence { flex: none; font-size: .75rem; border-radius: 999px; padding: .1rem .5rem;
      background: #f6f8fa; color: #57606a; border: 1px solid #d0d7de; }
    .confidence.strong { background: #dafbe1; color: #116329; border-color: #aceebb; }
    .question { margin: .5rem 0 0; color: #57606a; font-size: .9rem; }
    .text { margin: .4rem 0; white-space: pre-line; overflow-wrap: anywhere; }
    mark { background: #fff8c5; color: inherit; padding: 0 .1rem; border-radius: 3px; }
    .meta { display: flex; flex-wrap: wrap; gap: .15rem .75rem; font-size: .8rem;
      color: #57606a; margin: .25rem 0 0; }
    .meta a { color: var(--accent); }
    .notice { margin: 0; }
    .error { color: #a40e26; }
    .chips { display: flex; flex-wrap: wrap; gap: .4rem; margin: 0; padding: 0;
      list-style: none; }
    .chips button { border-radius: 999px; font-size: .85rem; padding: .25rem .75rem;
      text-align: left; }
    button { font: inherit; cursor: pointer; border-radius: 8px; border: 1px solid #d0d7de;
      background: #f6f8fa; color: #1f2328; padding: .35rem .7rem; }
    button:hover { background: #eaeef2; }
    button:focus-visible, textarea:focus-visible, select:focus-visible, a:focus-visible {
      outline: 2px solid var(--accent); outline-offset: 2px; }
    .link { border: none; background: none; color: var(--accent); padding: 0; }
    .link:hover { background: none; text-decoration: underline; }
    .send { background: var(--accent); border-color: var(--accent); color: #fff; }
    .send:hover { background: var(--accent); filter: brightness(.92); }
    button:disabled { opacity: .6; cursor: wait; }
    form { position: sticky; bottom: 0; background: #fff; border-top: 1px solid #d0d7de;
      border-radius: 0 0 12px 12px; padding: .6rem 1rem .75rem; display: flex;
      flex-wrap: wrap; gap: .5rem; align-items: flex-end; }
    .field { display: flex; flex-direction: column; gap: .2rem; flex: 1 1 14rem; }
    .field.small { flex: 1 1 8rem; }
    label { font-size: .8rem; font-weight: 600; color: #57606a; }
    textarea, select { font: inherit; color: inherit; background: #fff; width: 100%;
      padding: .45rem .6rem; border: 1px solid #8c959f; border-radius: 8px; }
    textarea { resize: none; overflow-y: auto; max-height: min(10rem, 25vh); line-height: 1.4; }
    .counter { font-size: .75rem; color: #57606a; }
    .status, .unseen { position: absolute; width: 1px; height: 1px; overflow: hidden;
      clip: rect(0 0 0 0); white-space: nowrap; }
    .typing { display: flex; gap: .3rem; padding: .5rem 0; }
    .typing span { width: .5rem; height: .5rem; border-radius: 50%; background: #8c959f;
      animation: blink 1.2s infinite ease-in-out; }
    .typing span:nth-child(2) { animation-delay: .2s; }
    .typing span:nth-child(3) { animation-delay: .4s; }
    @keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
    @media (prefers-reduced-motion: reduce) { .typing span { animation: none; opacity: .6; } }
    .votes { display: flex; align-items: center; gap: .4rem; margin: .5rem 0 0;
      font-size: .85rem; color: #57606a; }
    .votes button { padding: .15rem .5rem; }
    .close { border: none; background: none; font-size: 1.4rem; line-height: 1;
      padding: .1rem .4rem; color: #57606a; }
    .launcher { position: fixed; right: 1rem; bottom: 1rem; z-index: 2147483000;
      width: 3.5rem; height: 3.5rem; border-radius: 50%; border: none; font-size: 1.5rem;
      background: var(--careerbot-accent, #0969da); color: #fff;
      box-shadow: 0 4px 14px rgba(0, 0, 0, .25); }
    .launcher::before { content: ""; position: absolute; left: 1rem; top: 1.05rem;
      width: 1.5rem; height: 1.1rem; border-radius: .35rem; background: #fff; }
    .launcher::after { content: ""; position: absolute; left: 1.35rem; top: 2.05rem;
      border: .3rem solid transparent; border-top-color: #fff; border-left-color: #fff; }
    .launcher[aria-expanded="true"]::before, .launcher[aria-expanded="true"]::after {
      display: none; }
    .launcher:hover { background: var(--careerbot-accent, #0969da); filter: brightness(.92); }
    .floating { position: fixed; right: 1rem; bottom: 5.5rem; z-index: 2147483000;
      width: min(25rem, calc(100vw - 2rem)); height: min(40rem, calc(100vh - 7rem));
      box-shadow: 0 8px 30px rgba(0, 0, 0, .2); }
    .floating .log { flex: 1; overflow-y: auto; }
    .floating form { position: static; }
    .floating .log { overscroll-behavior: contain; }
    /* A phone or a short window: the open panel fills the screen (its × closes it), and on
       a short one the form is compact, its labels left to screen readers. */
    @media ${FULL_SCREEN} {
      .floating { inset: 0; width: auto; height: auto; border: none; border-radius: 0;
        z-index: 2147483001; }
      .floating form { border-radius: 0; }
      .floating:not([hidden]) ~ .launcher { display: none; }
    }
    @media (max-height: 32rem) {
      .floating .head { padding-top: .4rem; }
      .floating .log { padding: .5rem 1rem; }
      .floating form { padding: .4rem 1rem .5rem; gap: .4rem; }
      .floating label { position: absolute; width: 1px; height: 1px; overflow: hidden;
        clip: rect(0 0 0 0); white-space: nowrap; }
    }
    [hidden] { display: none !important; }
  `;

  // Build an element; strings among the children become text nodes, never markup.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) {
        node.append(typeof child === "string" ? document.createTextNode(child) : child);
      }
    }
    return node;
  }

  function initials(name) {
    const parts = name.split(/\s+/).filter(Boolean).map((part) => Array.from(part));
    const letters = parts.length > 1 ? [parts[0][0], parts[parts.length - 1][0]]
      : (parts[0] || []).slice(0, 2);
    return letters.join("").toUpperCase();
  }

  // "Strong match" only for a first answer that is both good and clearly ahead.
  function confidence(answers, position) {
    if (position > 0) return ["Also related", ""];
    const next = answers.length > 1 ? answers[1].score : THRESHOLD;
    const first = answers[0].score;
    return first >= STRONG && first - next >= LEAD ? ["Strong match", "strong"] : ["Possible match", ""];
  }

  // The passage alone (`excerpt`), or the whole answer with the passage marked in it.
  function answerText(answer, excerpt) {
    const node = el("p", { class: "text" });
    const start = answer.text.indexOf(answer.passage);
    if (start < 0 || answer.passage === answer.text) {
      node.append(excerpt ? answer.passage : answer.text);
      return node;
    }
    const end = start + answer.passage.length;
    if (excerpt) {
      node.append(start > 0 ? "… " : "", answer.passage, end < answer.text.length ? " …" : "");
    } else {
      node.append(answer.text.slice(0, start), el("mark", {}, answer.passage),
        answer.text.slice(end));
    }
    return node;
  }

  // Where the answer comes from: the interview's title and date when the corpus gives
  // them, else its file and the answer's lines there.
  function source(answer) {
    const src = answer.source || {};
    const lines = src.title ? [] : src.lines || [];
    const where = lines.length === 2
      ? (lines[0] === lines[1] ? ` (line ${lines[0]})` : ` (lines ${lines[0]}–${lines[1]})`) : "";
    const name = src.title || String(src.document || "").split("/").pop();
    const link = /^https?:\/\//i.test(src.url || "")
      ? el("a", { href: src.url, target: "_blank", rel: "noopener noreferrer" }, name) : name;
    return el("span", { class: "source" }, "From ", link, src.date ? `, ${src.date}` : "", where);
  }

  // "Was this helpful?" with 👍/👎; `vote(helpful)` sends it and resolves to the response's
  // status (0 when none came).
  function votes(vote) {
    const group = el("div", { class: "votes", role: "group", "aria-label": "Was this answer helpful?" },
      el("span", { "aria-hidden": "true" }, "Helpful?"));
    const note = el("span", { role: "status" });
    for (const [helpful, face, label] of [[true, "👍 Yes", "Yes, helpful"], [false, "👎 No", "Not helpful"]]) {
      const button = el("button", { type: "button", "aria-label": label, title: label }, face);
      button.addEventListener("click", async () => {
        for (const b of group.querySelectorAll("button")) b.disabled = true;
        note.textContent = "";
        const status = await vote(helpful);
        // A disabled or removed button loses the focus to the page: give it back here,
        // unless the reader has moved it elsewhere meanwhile. The browser may not have
        // moved it off the disabled button yet (a quick answer): that counts as lost too.
        const nowhere = !document.activeElement || document.activeElement === document.body;
        const lost = nowhere || group.contains(group.getRootNode().activeElement);
        if (status >= 200 && status < 300 || status === 404) {
          // 404: this server keeps no question log (or no longer has this answer's record),
          // so trying again would not help.
          const said = status === 404 ? "Feedback isn't recorded here." : "Thanks for your feedback.";
          const thanks = el("span", { role: "status", tabindex: "-1" }, said);
          group.replaceChildren(thanks);
          if (lost) thanks.focus();
        } else {
          for (const b of group.querySelectorAll("button")) b.disabled = false;
          note.textContent = "Your feedback could not be sent; try again.";
          if (lost) button.focus();
        }
      });
      group.append(button);
    }
    group.append(note);
    return group;
  }

  function card(answers, position, vote) {
    const answer = answers[position];
    const speaker = answer.speaker;
    const more = answer.text.length > answer.passage.length + MORE;
    let text = answerText(answer, more);
    const [label, kind] = confidence(answers, position);
    const article = el("article", { class: "card" },
      el("div", { class: "byline" },
        el("span", { class: "avatar", "aria-hidden": "true" }, initials(speaker.name)),
        el("div", {}, el("p", { class: "who" }, speaker.name),
          speaker.role ? el("p", { class: "role" }, speaker.role) : null),
        el("span", { class: `confidence ${kind}`, title: `score ${answer.score.toFixed(2)}`,
          "data-score": answer.score.toFixed(3) }, label)),
      el("p", { class: "question" }, `Asked: ${answer.question}`),
      text);
    if (more) {
      const toggle = el("button", { type: "button", class: "link", "aria-expanded": "false" },
        "Show the whole answer");
      toggle.addEventListener("click", () => {
        const expanded = toggle.getAttribute("aria-expanded") === "true";
        const replacement = answerText(answer, expanded);
        text.replaceWith(replacement);
        text = replacement;
        toggle.setAttribute("aria-expanded", String(!expanded));
        toggle.textContent = expanded ? "Show the whole answer" : "Show less";
        // Keep the reader's place: the passage, now inside the whole answer, or the card.
        const mark = replacement.querySelector("mark");
        (mark || article).scrollIntoView({ block: mark ? "center" : "nearest" });
      });
      article.append(toggle);
    }
    const matched = answer.why && answer.why.matched_terms.length
      ? el("span", {}, `Matched: ${answer.why.matched_terms.join(", ")}`) : null;
    article.append(el("p", { class: "meta" }, source(answer), matched));
    if (vote) article.append(votes(vote));
    return article;
  }

  function mount() {
    const host = el("div", { class: launcherMode ? "careerbot-widget careerbot-launcher" : "careerbot-widget" });
    if (accent) host.style.setProperty("--careerbot-accent", accent);
    if (!launcherMode && script && script.parentNode && script.parentNode !== document.head) {
      script.after(host);
    } else {
      document.body.append(host);
    }
    const root = host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    root.adoptedStyleSheets = [sheet];

    const log = el("div", { class: "log", role: "log", "aria-live": "polite",
      "aria-label": "Conversation" });
    const welcome = el("div", { class: "welcome" });
    log.append(welcome);
    // A posted question may run to paragraphs: Enter asks, Shift+Enter starts a new line,
    // and the box grows with its text (up to its max-height, then scrolls).
    const input = el("textarea", { id: "careerbot-question", rows: "1",
      maxlength: String(BOX_UNITS), autocomplete: "off", placeholder: "Ask a career question",
      enterkeyhint: "send",
      "aria-describedby": "careerbot-hint careerbot-counter" });
    const hint = el("span", { id: "careerbot-hint", class: "unseen" },
      "Enter asks; Shift+Enter starts a new line.");
    // Near the limit, how much of it is used. A longer question is kept whole (up to
    // BOX_UNITS: a post pasted in often asks at its end), and not sent until shortened.
    // Counted as the text changes, not as the window is resized.
    const counter = el("span", { id: "careerbot-counter", class: "counter", hidden: "" });
    let over = false;
    let said = "";  // what the status last said of the limit, taken back once within it
    const tell = (message) => { status.textContent = said = message; };
    const count = () => {
      // No shorter in characters than in JavaScript's units: counted only when it matters.
      const used = input.value.length < MAX_CHARS - 100 ? 0 : characters(input.value);
      counter.hidden = used < MAX_CHARS - 100;
      counter.textContent = counter.hidden ? ""
        : used > MAX_CHARS
          ? `${used} of ${MAX_CHARS} characters: shorten it by ${used - MAX_CHARS} to ask`
          : `${used} of ${MAX_CHARS} characters`;
      // Said to screen readers once, as it goes past the limit (the counter describes the
      // box too).
      if (used > MAX_CHARS && !over) tell(counter.textContent);
      if (used <= MAX_CHARS && said && status.textContent === said) tell("");
      over = used > MAX_CHARS;
    };
    const fit = () => {
      if (!input.clientWidth) return;  // hidden (a closed launcher): fitted when shown
      input.style.height = "";  // back to its own height first, so that it can shrink
      // scrollHeight leaves out the two 1px borders.
      if (input.value) input.style.height = `${input.scrollHeight + 2}px`;
    };
    const changed = () => { count(); fit(); };
    input.addEventListener("input", changed);
    window.addEventListener("resize", fit);
    input.addEventListener("keydown", (event) => {
      // keyCode 229: the Enter that ends an input method's composition, in some browsers.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        send.click();  // as Enter in a one-line box: nothing while Ask is disabled
      }
    });
    const speakers = el("select", { id: "careerbot-speaker" }, el("option", { value: "" }, "Anyone"));
    const send = el("button", { type: "submit", class: "send" }, "Ask");
    const status = el("p", { class: "status", role: "status" });
    const form = el("form", {},
      el("div", { class: "field" }, el("label", { for: "careerbot-question" }, "Your question"),
        input, hint, counter),
      el("div", { class: "field small" }, el("label", { for: "careerbot-speaker" }, "Speaker"), speakers),
      send, status);
    const head = el("div", { class: "head" }, el("h2", { id: "careerbot-title" }, title));
    const panel = el("section", { class: "panel", id: "careerbot-panel",
      "aria-labelledby": "careerbot-title" }, head, log, form);
    root.append(panel);

    if (launcherMode) {
      const launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false",
        "aria-controls": "careerbot-panel", "aria-label": `Open chat: ${title}` });
      const close = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "×");
      head.append(close);
      panel.classList.add("floating");
      panel.setAttribute("role", "dialog");
      panel.hidden = true;
      const toggle = (open) => {
        panel.hidden = !open;
        launcher.setAttribute("aria-expanded", String(open));
        launcher.setAttribute("aria-label", `${open ? "Close" : "Open"} chat: ${title}`);
        launcher.textContent = open ? "×" : "";
        if (open) { fit(); input.focus(); } else launcher.focus();
      };
      launcher.addEventListener("click", () => toggle(panel.hidden));
      close.addEventListener("click", () => toggle(false));
      // Filling the screen, the panel is modal: Tab goes round inside it, never to the
      // page's links beneath; and once the screen turns small, the focus (on the button it
      // now covers, or on the page) moves into it.
      const fullScreen = window.matchMedia(FULL_SCREEN);
      const fill = (event) => {
        if (fullScreen.matches) panel.setAttribute("aria-modal", "true");
        else panel.removeAttribute("aria-modal");
        if (event && fullScreen.matches && !panel.hidden && !panel.contains(root.activeElement)) {
          input.focus();
        }
      };
      fullScreen.addEventListener("change", fill);
      fill();
      // Keys are heard on the whole document: a click on the panel's text, or a button that
      // is disabled or removed once pressed, leaves the focus on nothing (the page's body).
      document.addEventListener("keydown", (event) => {
        const inside = panel.contains(root.activeElement);
        const nowhere = !document.activeElement || document.activeElement === document.body;
        if (panel.hidden || !(inside || nowhere)) return;
        if (event.key === "Escape") { event.stopPropagation(); toggle(false); return; }
        if (event.key !== "Tab" || !fullScreen.matches) return;
        const stops = Array.from(panel.querySelectorAll("button, textarea, select, a[href]"))
          .filter((node) => !node.disabled && node.getClientRects().length);
        const [first, last] = [stops[0], stops[stops.length - 1]];
        const at = inside ? root.activeElement : null;
        if (!at || (event.shiftKey ? at === first : at === last)) {
          event.preventDefault();
          (event.shiftKey ? last : first).focus();
        }
      });
      root.append(launcher);
    }

    function request(path, options) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
      return fetch(api + path, { ...options, signal: controller.signal })
        .finally(() => clearTimeout(timer));
    }

    function getJson(path) {
      return request(path)
        .then((response) => (response.ok ? response.json() : []))
        .catch(() => []);
    }

    // Feedback is a courtesy: its failure never gets in the way of asking. Resolves to the
    // response's status, 0 when none came.
    function feedback(body) {
      return request("/feedback", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
        .then((response) => response.status)
        .catch(() => 0);
    }

    // Compact buttons that ask a question; with an ask id, a pick is reported as feedback.
    function chips(questions, askId) {
      const list = el("ul", { class: "chips" });
      for (const question of questions) {
        const button = el("button", { type: "button" }, question);
        button.addEventListener("click", () => {
          if (askId) feedback({ ask_id: askId, suggestion: question });
          ask(question);
        });
        list.append(el("li", {}, button));
      }
      return list;
    }

    // Who is in the interviews and three questions to start with.
    function greet(people, topics) {
      // Each name apart (<bdi>), so that one written right to left cannot turn the rest.
      const names = people.map((p) => el("bdi", {}, p.role ? `${p.name} (${p.role})` : p.name));
      if (names.length) {
        const line = el("p", {}, "Answers in the words of ");
        names.forEach((name, i) => line.append(
          i === 0 ? "" : i === names.length - 1 ? " and " : ", ", name));
        const count = topics.length;
        line.append(`, from interviews on ${count} question${count === 1 ? "" : "s"} ` +
          "about their work.");
        welcome.append(line);
      }
      const step = Math.max(1, Math.floor(topics.length / 3));
      const examples = topics.filter((_, i) => i % step === 0).slice(0, 3).map((t) => t.question);
      if (examples.length) welcome.append(el("p", {}, "Try one of these:"), chips(examples));
    }

    function noAnswer(entry, suggestions, askId, uncovered) {
      const topic = uncovered ? `The interviews don't talk about ${uncovered.replace(/-/g, " ")}.`
        : "The interviews don't cover that.";
      const shown = suggestions.slice(0, 3);
      entry.append(el("p", { class: "notice" }, shown.length ? `${topic} Closest questions they answer:` : topic));
      if (shown.length) entry.append(chips(shown, askId));
    }

    // An error, and a way to try again when trying again could help.
    function failed(entry, message, retry) {
      entry.append(el("p", { class: "notice error", role: "alert" }, message));
      if (!retry) return;
      const again = el("button", { type: "button" }, "Try again");
      again.addEventListener("click", () => { entry.remove(); retry(); });
      entry.append(again);
    }

    let pending = 0;  // questions on their way: Ask waits for them all

    async function ask(question, speaker = speakers.value) {
      question = tidy(question);
      if (!question) { input.focus(); return; }
      const bubble = el("p", { class: "asked" }, question);
      const typing = el("div", { class: "typing", "aria-hidden": "true" },
        el("span"), el("span"), el("span"));
      const entry = el("div", { class: "entry", "aria-busy": "true" }, typing);
      log.append(bubble, entry);
      bubble.scrollIntoView({ block: "start" });
      pending += 1;
      send.disabled = true;
      status.textContent = "Looking for answers…";
      const body = { question, top_k: 3 };
      if (speaker) body.speaker = speaker;
      const retry = () => { bubble.remove(); ask(question, speaker); };
      try {
        const response = await request("/ask", { method: "POST",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        const result = await response.json().catch(() => ({}));
        typing.remove();
        if (!response.ok) {
          const detail = typeof result.detail === "string" ? result.detail
            : response.statusText || `error ${response.status}`;
          // A question refused as it stands goes back in the box (unless another has been
          // begun there), to be mended, not retried.
          const refused = response.status === 422;
          if (refused && !input.value) { input.value = question; changed(); }
          failed(entry, `careerbot could not answer: ${detail}`, refused ? null : retry);
        } else if (result.answered) {
          try {
            const cards = result.answers.map((answer, position) => card(result.answers, position,
              result.id ? (helpful) => feedback({ ask_id: result.id, answer_id: answer.id, helpful })
                : null));
            entry.append(...cards);
          } catch (error) {
            failed(entry, "careerbot sent an answer this page cannot show.", retry);
          }
        } else {
          noAnswer(entry, result.suggestions || [], result.id, result.uncovered);
        }
      } catch (error) {
        typing.remove();
        failed(entry, "careerbot cannot be reached right now. Check your connection and try again.", retry);
      } finally {
        entry.removeAttribute("aria-busy");
        pending -= 1;
        send.disabled = pending > 0;
        if (!pending) status.textContent = "";
        // The question stays at the top, its answers below it.
        bubble.scrollIntoView({ block: "start" });
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const used = characters(input.value);
      if (used > MAX_CHARS) {  // stays in the box, whole, to be shortened
        tell(`Your question is ${used} characters; shorten it by ${used - MAX_CHARS} to ask ` +
          `(at most ${MAX_CHARS}).`);
        input.focus();
        return;
      }
      const question = input.value;
      input.value = "";
      changed();
      ask(question);
    });

    Promise.all([getJson("/speakers"), getJson("/topics")]).then(([people, topics]) => {
      for (const person of people) {
        speakers.append(el("option", { value: person.id },
          person.role ? `${person.name} (${person.role})` : person.name));
      }
      greet(people, topics);
    });
  }

  if (document.readyState === "loading" && !(script && script.parentNode !== document.head)) {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
