// Card preview: load a scenario's request into the text box, send it to the real endpoint,
// and have the server draw the answer (/preview/render) exactly as the scenarios are drawn.
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
    setState("busy", "Sending to /cds-services/" + serviceId + " …");
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

  function loadScenario(event) {
    const key = event.currentTarget.dataset.scenario;
    const section = document.querySelector('section.scenario[data-scenario="' + CSS.escape(key) + '"]');
    const text = section.querySelector("pre.request").textContent;
    const request = JSON.parse(text);
    request.hookInstance = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
    $("#request").value = JSON.stringify(request, null, 2);
    $("#service").value = section.dataset.service;
    $("#try").scrollIntoView();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#send").addEventListener("click", send);
    for (const btn of document.querySelectorAll("button.load-request")) btn.addEventListener("click", loadScenario);
    document.body.dataset.ready = "true";
  });
})();
