// careerbot widget (minimal): a question box that lists attributed answers as plain text.
(function () {
  "use strict";
  var script = document.currentScript;
  var api = (script && script.getAttribute("data-api")) || "";
  var box = document.createElement("form");
  var input = document.createElement("input");
  var button = document.createElement("button");
  var output = document.createElement("div");
  input.setAttribute("aria-label", "Your career question");
  button.textContent = "Ask";
  box.append(input, button);
  script.after(box, output);

  function line(text) {
    var p = document.createElement("p");
    p.textContent = text;
    output.append(p);
  }

  box.addEventListener("submit", function (event) {
    event.preventDefault();
    output.textContent = "Looking…";
    fetch(api + "/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question: input.value }),
    })
      .then(function (response) { return response.json(); })
      .then(function (result) {
        output.textContent = "";
        if (!result.answers) { line(result.detail || "Something went wrong."); return; }
        if (!result.answered) line("No answer in the interviews. Try: " + result.suggestions.join(" / "));
        result.answers.forEach(function (answer) {
          line(answer.speaker.name + " (" + answer.speaker.role + "), asked: " + answer.question);
          line(answer.passage);
        });
      })
      .catch(function () { output.textContent = "careerbot cannot be reached."; });
  });
})();
