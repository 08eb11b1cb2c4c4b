// Card preview: the request box sends any request to the real endpoint and has the server draw the
// answer (/preview/render) exactly as the scenarios are drawn; "Load into the request box" fetches the
// shown scenario's request. Choosing a scenario is a plain link (?s=<scenario>): no script needed.
(function () {
  "use strict";
  const $ = (sel) => document.querySelector(sel);

  function serviceFor(body) {
    const chosen = $("#service").value;
    if (chosen) return chosen;
    const hook = body && typeof body === "object" ? body.hook : undefined;
    for (const opt of $("#service").options) {
      if (opt.dataset.hook && opt.dataset.hook === hook) return opt.value;
    }
    return null;
  }

  function setState(state, text) {
    $("#result").dataset.state = state;
    $("#status").textContent = text || "";
  }

  function showError(text) {
    const box = document.createElement("div");
    box.className = "error-box";
    box.textContent = text;
    $("#result").replaceChildren(box);
    setState("error", "");
  }

  async function send() {
    let body;
    try {
      body = JSON.parse($("#request").value);
    } catch (err) {
      showError("The request is not valid JSON: " + err.message);
      return;
    }
    const serviceId = serviceFor(body);
    if (!serviceId) {
      showError("Choose a service, or give the request a hook this service answers.");
      return;
    }
    setState("busy", "Sending …");
    try {
      const started = performance.now();
      const resp = await fetch("/cds-services/" + encodeURIComponent(serviceId), {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
      });
      const elapsed = Math.round(performance.now() - started);
      let answer;
      try { answer = await resp.json(); } catch (err) { answer = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "the answer was not JSON"}]}; }
      const drawn = await fetch("/preview/render", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({status: resp.status, body: answer}),
      });
      $("#result").innerHTML = await drawn.text();  // server-rendered and escaped by the template
      setState("done", "HTTP " + resp.status + " in " + elapsed + " ms");
    } catch (err) {
      showError("The call failed: " + err.message);
    }
  }

  async function loadScenario(event) {
    const button = event.currentTarget;
    const key = button.dataset.scenario;
    const section = button.closest("section.scenario");
    setState("busy", "Loading the scenario's request …");
    const resp = await fetch("/preview/request/" + encodeURIComponent(key));
    if (!resp.ok) { showError("Could not load the request of " + key); return; }
    const request = await resp.json();
    request.hookInstance = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
    $("#request").value = JSON.stringify(request, null, 2);
    $("#service").value = section.dataset.service;
    $("#result").dataset.state = "loaded";
    $("#status").textContent = "Loaded " + key + ": edit it, then Send.";
    $("#try").scrollIntoView({block: "start"});
    $("#request").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#send").addEventListener("click", send);
    for (const btn of document.querySelectorAll("button.load-request")) btn.addEventListener("click", loadScenario);
    // Keep the chosen scenario in sight in the list, scrolling the list only (never the page: the request
    // box stays at the top).
    const nav = document.querySelector("nav.rules");
    const current = nav && nav.querySelector(".nav-item--current");
    if (current && current.offsetTop + current.offsetHeight > nav.scrollTop + nav.clientHeight) {
      nav.scrollTop = current.offsetTop - nav.clientHeight / 3;
    }
    document.body.dataset.ready = "true";
  });
})();
