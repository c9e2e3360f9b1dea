// careerbot chat widget. Embed with:
//   <script src="https://HOST/widget.js" data-api="https://HOST"></script>
// Everything from the server is shown as text (never parsed as HTML); styles live in a
// shadow root through a constructed stylesheet, so they work under `style-src 'self'`
// and neither leak out nor take the host page's rules.
(function () {
  "use strict";

  const script = document.currentScript;
  const api = ((script && script.dataset.api) || "").replace(/\/+$/, "");
  const LONG_ANSWER = 600; // characters; longer answers start collapsed
  const TIMEOUT_MS = 20000;

  const CSS = `
    /* !important here beats even the host page's !important rules on this element. */
    :host { all: initial !important; display: block !important;
      box-sizing: border-box !important; width: 100% !important; max-width: 44rem !important;
      color: #1f2328 !important; background: #fff !important; font: 15px/1.5 system-ui,
      -apple-system, "Segoe UI", Roboto, sans-serif !important; }
    *, *::before, *::after { box-sizing: border-box; }
    .panel { border: 1px solid #d0d7de; border-radius: 12px; padding: 1rem;
      display: flex; flex-direction: column; gap: .75rem; }
    h2 { font-size: 1.1rem; margin: 0; }
    .intro { margin: 0; color: #57606a; font-size: .9rem; }
    .log { display: flex; flex-direction: column; gap: .75rem; max-height: 36rem;
      overflow-y: auto; }
    .log:empty { display: none; }
    .asked { align-self: flex-end; background: #0969da; color: #fff; border-radius: 12px;
      padding: .4rem .75rem; max-width: 85%; overflow-wrap: anywhere; margin: 0; }
    .card { border: 1px solid #d0d7de; border-radius: 10px; padding: .75rem; margin: 0; }
    .who { margin: 0; font-weight: 600; }
    .role { font-weight: 400; color: #57606a; }
    .question { margin: .25rem 0; color: #57606a; font-size: .9rem; }
    .text { margin: .5rem 0; white-space: pre-line; overflow-wrap: anywhere; }
    mark { background: #fff8c5; color: inherit; padding: 0 .1rem; border-radius: 3px; }
    .meta { display: flex; flex-wrap: wrap; gap: .25rem .75rem; font-size: .8rem;
      color: #57606a; margin: 0; }
    .confidence { font-weight: 600; }
    .notice { margin: 0; }
    .error { color: #a40e26; }
    .choices { display: flex; flex-wrap: wrap; gap: .4rem; margin: .25rem 0 0; padding: 0;
      list-style: none; }
    button { font: inherit; cursor: pointer; border-radius: 8px; border: 1px solid #d0d7de;
      background: #f6f8fa; color: #1f2328; padding: .35rem .7rem; }
    button:hover { background: #eaeef2; }
    button:focus-visible, input:focus-visible, select:focus-visible {
      outline: 2px solid #0969da; outline-offset: 2px; }
    .link { border: none; background: none; color: #0969da; padding: 0; }
    .send { background: #1f883d; border-color: #1f883d; color: #fff; }
    .send:hover { background: #1a7f37; }
    button:disabled { opacity: .6; cursor: wait; }
    form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; }
    .field { display: flex; flex-direction: column; gap: .2rem; flex: 1 1 14rem; }
    .field.small { flex: 0 1 11rem; }
    label { font-size: .85rem; font-weight: 600; }
    input, select { font: inherit; color: inherit; background: #fff; width: 100%;
      padding: .45rem .6rem; border: 1px solid #8c959f; border-radius: 8px; }
    .status { min-height: 1.2em; margin: 0; font-size: .85rem; color: #57606a; }
    .votes { display: flex; align-items: center; gap: .4rem; margin: .5rem 0 0;
      font-size: .85rem; color: #57606a; }
    .votes button { padding: .15rem .5rem; }
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

  function confidence(score) {
    if (score >= 0.5) return "Strong match";
    if (score >= 0.38) return "Good match";
    return "Possible match";
  }

  // The answer's text with its best passage marked; `excerpt` shows only the passage.
  function answerText(answer, excerpt) {
    const node = el("p", { class: "text" });
    const start = answer.text.indexOf(answer.passage);
    if (start < 0) {
      node.append(excerpt ? answer.passage : answer.text);
      return node;
    }
    const end = start + answer.passage.length;
    if (excerpt) {
      node.append(start > 0 ? "… " : "", el("mark", {}, answer.passage),
        end < answer.text.length ? " …" : "");
    } else {
      node.append(answer.text.slice(0, start), el("mark", {}, answer.passage),
        answer.text.slice(end));
    }
    return node;
  }

  // "Was this helpful?" with 👍/👎; `vote(helpful)` sends it and resolves true when stored.
  function votes(vote) {
    const group = el("div", { class: "votes", role: "group", "aria-label": "Was this answer helpful?" },
      el("span", { "aria-hidden": "true" }, "Helpful?"));
    const note = el("span", { role: "status" });
    for (const [helpful, face, label] of [[true, "👍", "Yes, helpful"], [false, "👎", "Not helpful"]]) {
      const button = el("button", { type: "button", "aria-label": label, title: label }, face);
      button.addEventListener("click", async () => {
        for (const b of group.querySelectorAll("button")) b.disabled = true;
        note.textContent = "";
        if (await vote(helpful)) {
          group.replaceChildren(el("span", { role: "status" }, "Thanks for your feedback."));
        } else {
          for (const b of group.querySelectorAll("button")) b.disabled = false;
          note.textContent = "Your feedback could not be sent; try again.";
        }
      });
      group.append(button);
    }
    group.append(note);
    return group;
  }

  function card(answer, vote) {
    const speaker = answer.speaker;
    const long = answer.text.length > LONG_ANSWER && answer.passage !== answer.text;
    let text = answerText(answer, long);
    const article = el("article", { class: "card" },
      el("p", { class: "who" }, speaker.name,
        speaker.role ? el("span", { class: "role" }, ` · ${speaker.role}`) : null),
      el("p", { class: "question" }, `Asked: ${answer.question}`),
      text);
    if (long) {
      const toggle = el("button", { type: "button", class: "link", "aria-expanded": "false" },
        "Show the whole answer");
      toggle.addEventListener("click", () => {
        const expanded = toggle.getAttribute("aria-expanded") === "true";
        const replacement = answerText(answer, expanded);
        text.replaceWith(replacement);
        text = replacement;
        toggle.setAttribute("aria-expanded", String(!expanded));
        toggle.textContent = expanded ? "Show the whole answer" : "Show less";
      });
      article.append(toggle);
    }
    const lines = answer.source.lines;
    const where = lines[0] === lines[1] ? `line ${lines[0]}` : `lines ${lines[0]}–${lines[1]}`;
    const matched = answer.why.matched_terms.length
      ? el("span", {}, `Matched: ${answer.why.matched_terms.join(", ")}`) : null;
    article.append(el("p", { class: "meta" },
      el("span", { class: "confidence" }, `${confidence(answer.score)} (${answer.score.toFixed(2)})`),
      matched,
      el("span", {}, `Source: ${answer.source.document}, ${where}`)));
    if (vote) article.append(votes(vote));
    return article;
  }

  function mount() {
    const host = el("div", { class: "careerbot-widget" });
    if (script && script.parentNode && script.parentNode !== document.head) script.after(host);
    else document.body.append(host);
    const root = host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];

    const log = el("div", { class: "log", role: "log", "aria-live": "polite",
      "aria-label": "Conversation" });
    const input = el("input", { id: "careerbot-question", type: "text", maxlength: "1000",
      autocomplete: "off", placeholder: "e.g. How do I move from data science into ML?" });
    const speakers = el("select", { id: "careerbot-speaker" }, el("option", { value: "" }, "Anyone"));
    const send = el("button", { type: "submit", class: "send" }, "Ask");
    const status = el("p", { class: "status", role: "status" });
    const form = el("form", {},
      el("div", { class: "field" }, el("label", { for: "careerbot-question" }, "Your question"), input),
      el("div", { class: "field small" }, el("label", { for: "careerbot-speaker" }, "Speaker"), speakers),
      send);
    root.append(el("section", { class: "panel", "aria-label": "careerbot" },
      el("h2", {}, "Ask people who do the job"),
      el("p", { class: "intro" }, "Answers are quoted from interviews with practitioners."),
      log, form, status));

    let topics = null;

    function request(path, options) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
      return fetch(api + path, { ...options, signal: controller.signal })
        .finally(() => clearTimeout(timer));
    }

    // Feedback is a courtesy: its failure never gets in the way of asking.
    function feedback(body) {
      return request("/feedback", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
        .then((response) => response.ok)
        .catch(() => false);
    }

    // Buttons that ask a question; with an ask id, picking one is reported as feedback.
    function choices(questions, askId) {
      const list = el("ul", { class: "choices" });
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

    function loadTopics() {
      topics = topics || request("/topics")
        .then((response) => (response.ok ? response.json() : []))
        .then((items) => items.map((item) => item.question))
        .catch(() => []);
      return topics;
    }

    async function noAnswer(entry, suggestions, askId, uncovered) {
      const topic = uncovered ? `The interviews don't talk about ${uncovered.replace(/-/g, " ")}.`
        : "The interviews don't cover that.";
      entry.append(el("p", { class: "notice" }, `${topic} Try one of these questions:`),
        choices(suggestions, askId));
      const others = (await loadTopics()).filter((topic) => !suggestions.includes(topic));
      if (others.length) {
        entry.append(el("p", { class: "notice" }, "Or pick a topic the interviews cover:"),
          choices(others));
      }
    }

    function failed(entry, message, retry) {
      const again = el("button", { type: "button" }, "Try again");
      again.addEventListener("click", () => { entry.remove(); retry(); });
      entry.append(el("p", { class: "notice error", role: "alert" }, message), again);
    }

    async function ask(question, speaker = speakers.value) {
      question = question.trim();
      if (!question) { input.focus(); return; }
      const bubble = el("p", { class: "asked" }, question);
      const entry = el("div", { class: "entry" });
      log.append(bubble, entry);
      send.disabled = true;
      status.textContent = "Looking for answers…";
      entry.setAttribute("aria-busy", "true");
      const body = { question, top_k: 3 };
      if (speaker) body.speaker = speaker;
      const retry = () => { bubble.remove(); ask(question, speaker); };
      try {
        const response = await request("/ask", { method: "POST",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        const result = await response.json().catch(() => ({}));
        if (!response.ok) {
          failed(entry, `careerbot could not answer: ${result.detail || response.statusText}`, retry);
        } else if (result.answered) {
          for (const answer of result.answers) {
            const vote = result.id ? (helpful) => feedback({ ask_id: result.id,
              answer_id: answer.id, helpful }) : null;
            entry.append(card(answer, vote));
          }
        } else {
          await noAnswer(entry, result.suggestions || [], result.id, result.uncovered);
        }
      } catch (error) {
        failed(entry, "careerbot cannot be reached right now. Check your connection and try again.", retry);
      } finally {
        entry.removeAttribute("aria-busy");
        send.disabled = false;
        status.textContent = "";
        entry.scrollIntoView({ block: "nearest" });
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const question = input.value;
      input.value = "";
      ask(question);
    });

    request("/speakers")
      .then((response) => (response.ok ? response.json() : []))
      .then((people) => {
        for (const person of people) {
          speakers.append(el("option", { value: person.id },
            person.role ? `${person.name} (${person.role})` : person.name));
        }
      })
      .catch(() => {});
  }

  if (document.readyState === "loading" && !(script && script.parentNode !== document.head)) {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
